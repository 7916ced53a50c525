// Member H5: the draw form sends client randomness, and a fresh idempotency key after each draw.
(function () {
  function randomHex(bytes) {
    var buf = new Uint8Array(bytes);
    window.crypto.getRandomValues(buf);
    return Array.prototype.map.call(buf, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id === "draw-form") {
      event.detail.parameters.entropy = randomHex(16);
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "draw-result") return;
    var next = event.detail.target.querySelector("template.next-key");
    var form = document.getElementById("draw-form");
    if (next && form) form.querySelector("input[name=draw_key]").value = next.dataset.key;
  });
})();
