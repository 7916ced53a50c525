// The open platform page's chart: each OAuth client's calls per day (#usage-data).
(function () {
  var palette = ["#b5121b", "#1f6feb", "#1a7f37", "#9a6700", "#8250df", "#57606a"];
  function draw() {
    var node = document.getElementById("usage-data");
    var canvas = document.getElementById("usage-chart");
    if (!node || !canvas || typeof Chart === "undefined") return;
    var d = JSON.parse(node.textContent);
    new Chart(canvas, {
      type: "line",
      data: {
        labels: d.days,
        datasets: d.clients.map(function (c, i) {
          var color = palette[i % palette.length];
          return { label: c.name, data: c.calls, borderColor: color, backgroundColor: color, tension: 0.2 };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
