// Activity dashboard: one Chart.js chart fed by the stats fragment HTMX refreshes.
(function () {
  var chart = null;
  function data() {
    var node = document.getElementById("chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }
  function draw() {
    var canvas = document.getElementById("prize-chart");
    var d = data();
    if (!canvas || !d || typeof Chart === "undefined") return;
    if (chart) {
      chart.data.labels = d.labels;
      chart.data.datasets[0].data = d.won;
      chart.data.datasets[1].data = d.left;
      chart.update();
      return;
    }
    chart = new Chart(canvas, {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: [
          { label: canvas.dataset.won, data: d.won, backgroundColor: "#b5121b" },
          { label: canvas.dataset.left, data: d.left, backgroundColor: "#8c959f" }
        ]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
