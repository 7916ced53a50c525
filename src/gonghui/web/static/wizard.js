// Activity wizard: show only the steps (and fields) the chosen template uses (all are shown without JS;
// the server reads only the fields of the chosen template).
(function () {
  function sync() {
    var select = document.getElementById("template");
    if (!select) return;
    document.querySelectorAll("[data-templates]").forEach(function (part) {
      part.hidden = part.dataset.templates.split(" ").indexOf(select.value) < 0;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("template");
    if (select) select.addEventListener("change", sync);
    sync();
  });
})();
