// Activity wizard: show only the steps the chosen template uses (all are shown without JS;
// the server reads only the fields of the chosen template).
(function () {
  function sync() {
    var select = document.getElementById("template");
    if (!select) return;
    document.querySelectorAll("fieldset[data-templates]").forEach(function (fieldset) {
      fieldset.hidden = fieldset.dataset.templates.split(" ").indexOf(select.value) < 0;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("template");
    if (select) select.addEventListener("change", sync);
    sync();
  });
})();
