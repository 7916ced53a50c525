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
// Vote: the vote buttons share one idempotency key (a retried tap is one vote); after each
// vote every button gets the fresh key the answer carries, and the candidate's count (when
// shown) counts the vote, which was recorded before the answer came.
(function () {
  // (A challenge's form swaps itself for the answer, inside the result box: look there.)
  document.addEventListener("htmx:afterSwap", function () {
    var next = document.querySelector(".vote-result template.next-key");
    if (!next) return;
    var box = next.closest(".candidate-card, .candidate-vote");
    var count = box && box.querySelector(".votes[data-votes]");
    if (count) {
      count.dataset.votes = String(Number(count.dataset.votes) + 1);
      count.textContent = count.dataset.template.replace("{n}", count.dataset.votes);
    }
    next.remove();
    document.querySelectorAll(".vote-form input[name=vote_key]").forEach(function (input) {
      input.value = next.dataset.key;
    });
  });
})();
// Quiz: a countdown to the server's deadline; at zero the answers so far are submitted.
(function () {
  function start() {
    var timer = document.querySelector(".timer[data-deadline]");
    var form = document.getElementById("quiz-form");
    if (!timer || !form) return;
    var deadline = Date.parse(timer.dataset.deadline);
    var sent = false;
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      timer.textContent = timer.dataset.label + " " + m + ":" + (s < 10 ? "0" : "") + s;
      timer.classList.toggle("urgent", left <= 10);
      if (left === 0 && !sent) { sent = true; form.requestSubmit(); return; }
      window.setTimeout(tick, 1000);
    }
    tick();
  }
  document.addEventListener("DOMContentLoaded", start);
})();
// Hub: after "load more" swaps in the next page, focus moves to the first activity loaded
// (the button that had focus is gone).
(function () {
  document.addEventListener("htmx:afterSettle", function () {
    var first = document.querySelector("#hub-list [data-focus-first]");
    if (!first) return;
    first.removeAttribute("data-focus-first");
    first.focus();
  });
})();
// Voucher centre: a countdown to each upcoming grab's opening; at zero the page reloads with
// the claim buttons.
(function () {
  function start() {
    var timers = document.querySelectorAll(".countdown[data-opens-at]");
    if (!timers.length) return;
    var reloading = false;
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function tick() {
      Array.prototype.forEach.call(timers, function (timer) {
        var left = Math.max(0, Math.round((Date.parse(timer.dataset.opensAt) - Date.now()) / 1000));
        var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
        timer.textContent = timer.dataset.template.replace("{time}", pad(h) + ":" + pad(m) + ":" + pad(s));
        if (left === 0 && !reloading) {
          reloading = true;
          window.setTimeout(function () { window.location.reload(); }, 1000);
        }
      });
    }
    tick();
    window.setInterval(tick, 1000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
