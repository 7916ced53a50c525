// The till: scan the member's QR code with the phone's camera where the browser can
// (BarcodeDetector), else type or use a scanner that types into the field. After a
// redemption the form is cleared for the next member.
(function () {
  function startScanner() {
    var button = document.getElementById("scan");
    var video = document.getElementById("scan-video");
    var field = document.getElementById("code");
    if (!button || !video || !field || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    button.hidden = false;
    var stream = null;
    function stop() {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
      video.hidden = true;
    }
    button.addEventListener("click", function () {
      if (stream) { stop(); return; }
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        video.play();
        function look() {
          if (!stream) return;
          detector.detect(video).then(function (found) {
            if (found.length) {
              field.value = found[0].rawValue;
              stop();
              document.getElementById("amount").focus();
            } else {
              window.requestAnimationFrame(look);
            }
          }, function () { window.requestAnimationFrame(look); });
        }
        look();
      }, stop);
    });
  }
  document.addEventListener("DOMContentLoaded", startScanner);
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "till-live") return;
    if (event.detail.target.querySelector("[data-done]")) {
      var form = document.getElementById("till-form");
      form.querySelector("#code").value = "";
      form.querySelector("#amount").value = "";
      form.querySelector("#code").focus();
    }
  });
})();
