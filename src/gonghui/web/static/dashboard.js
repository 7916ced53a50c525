// Activity dashboard: Chart.js charts fed by the stats fragment HTMX refreshes.
(function () {
  var charts = {};
  function data() {
    var node = document.getElementById("chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }
  function upsert(id, make, update) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    if (charts[id]) { update(charts[id]); charts[id].update(); return; }
    charts[id] = new Chart(canvas, make(canvas));
  }
  function draw() {
    var d = data();
    if (!d || typeof Chart === "undefined") return;
    var scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };
    upsert("prize-chart", function (canvas) {
      return {
        type: "bar",
        data: {
          labels: d.labels,
          datasets: [
            { label: canvas.dataset.won, data: d.won, backgroundColor: "#b5121b" },
            { label: canvas.dataset.left, data: d.left, backgroundColor: "#8c959f" }
          ]
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales }
      };
    }, function (chart) {
      chart.data.labels = d.labels;
      chart.data.datasets[0].data = d.won;
      chart.data.datasets[1].data = d.left;
    });
    upsert("time-chart", function (canvas) {
      return {
        type: "line",
        data: { labels: d.hours, datasets: [{ label: canvas.dataset.draws, data: d.draws, borderColor: "#b5121b", backgroundColor: "#b5121b", tension: 0.2 }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales }
      };
    }, function (chart) {
      chart.data.labels = d.hours;
      chart.data.datasets[0].data = d.draws;
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
