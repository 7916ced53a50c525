// The analytics page's charts (#analytics-data): verified and active members per month,
// benefits issued per kind per month, and activities' budgets against what they spent.
// Each chart has its table beside it on the page.
(function () {
  var palette = ["#b5121b", "#1f6feb", "#1a7f37", "#9a6700", "#8250df", "#57606a"];
  var options = {
    responsive: true, maintainAspectRatio: false, animation: false,
    scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
  };
  function draw() {
    var node = document.getElementById("analytics-data");
    if (!node || typeof Chart === "undefined") return;
    var d = JSON.parse(node.textContent);
    var coverage = document.getElementById("coverage-chart");
    if (coverage) {
      new Chart(coverage, {
        type: "bar",
        data: {
          labels: d.months,
          datasets: [
            { label: coverage.dataset.verified, data: d.verified, backgroundColor: "#8c959f" },
            { label: coverage.dataset.active, data: d.active, backgroundColor: "#b5121b" }
          ]
        },
        options: options
      });
    }
    var benefits = document.getElementById("benefits-chart");
    if (benefits) {
      new Chart(benefits, {
        type: "bar",
        data: {
          labels: d.months,
          datasets: d.benefits.map(function (k, i) {
            return { label: k.label, data: k.issued, backgroundColor: palette[i % palette.length] };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
        }
      });
    }
    var budget = document.getElementById("budget-chart");
    if (budget) {
      new Chart(budget, {
        type: "bar",
        data: {
          labels: d.budget.labels,
          datasets: [
            { label: budget.dataset.budget, data: d.budget.budget, backgroundColor: "#8c959f" },
            { label: budget.dataset.spent, data: d.budget.spent, backgroundColor: "#b5121b" }
          ]
        },
        options: {
          indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { beginAtZero: true } }
        }
      });
    }
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
