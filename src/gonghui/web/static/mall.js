// Mall: pay inside WeChat with the parameters the server signed (JSAPI). In a mini
// program's page wx.requestPayment takes them; in WeChat's browser the bridge's
// getBrandWCPayRequest does. Either way the order page follows, which shows the state
// WeChat Pay's notification left.
(function () {
  function pay() {
    var holder = document.getElementById("pay-params");
    if (!holder) return;
    var params = JSON.parse(holder.textContent);
    function back() { window.location.assign(holder.dataset.done); }
    if (window.wx && typeof window.wx.requestPayment === "function") {
      window.wx.requestPayment({
        timeStamp: params.timeStamp, nonceStr: params.nonceStr, package: params["package"],
        signType: params.signType, paySign: params.paySign, complete: back
      });
    } else if (window.WeixinJSBridge) {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, back);
    } else {
      document.addEventListener("WeixinJSBridgeReady", pay, { once: true });
    }
  }
  document.addEventListener("DOMContentLoaded", pay);
})();
