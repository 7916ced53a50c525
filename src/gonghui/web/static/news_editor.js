// The news editor's visual mode: Quill (vendor/quill.min.js) over the body's HTML field.
// The field (#body_html) stays the form's value: the editor's HTML is put back into it on
// submit, and "Edit the HTML source" shows the field itself. The server sanitises the
// body whatever mode wrote it (news/markup.py). A body holding a table stays in the HTML
// field: Quill without its table module would flatten the table.
(function () {
  function start() {
    var area = document.getElementById("body_html");
    var holder = document.getElementById("body-editor");
    var tools = document.getElementById("body-tools");
    var source = document.getElementById("body-source");
    if (!area || !holder || !tools || typeof Quill === "undefined") return;
    if (/<table[\s>]/i.test(area.value)) return;

    var quill = new Quill(holder, {
      theme: "snow",
      modules: { toolbar: "#body-toolbar" },
      formats: ["header", "bold", "italic", "underline", "list", "blockquote", "link", "image"]
    });
    var editor = quill.root;
    editor.setAttribute("role", "textbox");
    editor.setAttribute("aria-multiline", "true");
    editor.setAttribute("aria-labelledby", "body-label");
    editor.setAttribute("aria-describedby", "body-hint");
    // The link tooltip's words are CSS content in Quill's theme: app.css shows these
    // data attributes instead, in the page's language.
    var tip = holder.querySelector(".ql-tooltip");
    if (tip) {
      var input = tip.querySelector("input");
      input.setAttribute("aria-label", holder.dataset.linkLabel);
      input.dataset.link = "https://";
      tip.dataset.visit = holder.dataset.visit;
      tip.dataset.enter = holder.dataset.enter;
      var action = tip.querySelector("a.ql-action"), remove = tip.querySelector("a.ql-remove");
      if (action) { action.dataset.edit = holder.dataset.edit; action.dataset.save = holder.dataset.save; }
      if (remove) remove.dataset.remove = holder.dataset.remove;
    }

    function load() {
      quill.setContents(quill.clipboard.convert({ html: area.value }), "silent");
    }
    function html() {
      var empty = quill.getText().trim() === "" && !editor.querySelector("img");
      return empty ? "" : quill.getSemanticHTML();
    }
    function visual(on) {
      if (on) load(); else area.value = html();
      holder.hidden = !on;
      tools.querySelector("#body-toolbar").hidden = !on;
      area.hidden = on;
      // A hidden required field would block the form; the server refuses an empty body.
      area.required = !on;
      source.setAttribute("aria-pressed", on ? "false" : "true");
    }

    tools.hidden = false;
    visual(true);
    source.addEventListener("click", function () {
      visual(holder.hidden);
      (holder.hidden ? area : editor).focus();
    });
    area.form.addEventListener("submit", function () {
      if (!holder.hidden) area.value = html();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
