// Connects this page to the server's Socket.IO endpoint and hands events to the page.
// The server decides what the page may hear (from its cookies) and sends the current state
// on every (re)connect, so nothing here asks the server for status: no polling.
(function () {
  "use strict";

  function connect(root, handlers) {
    var transports = (root.dataset.transports || "websocket").split(",");
    var socket = window.io({ transports: transports, reconnectionDelayMax: 5000 });
    Object.keys(handlers).forEach(function (event) { socket.on(event, handlers[event]); });
    var live = document.getElementById("live-status");
    socket.on("connect_error", function () {
      if (live) { live.textContent = "Connection lost, reconnecting…"; }
    });
    socket.on("connect", function () {
      if (live && live.textContent.indexOf("reconnecting") !== -1) { live.textContent = ""; }
    });
    return socket;
  }

  function countdown(el, onZero) {
    if (!el) { return function () {}; }
    var deadline = Date.now() + 1000 * parseInt(el.dataset.secondsLeft || "0", 10);
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      if (left === 0) { clearInterval(timer); if (onZero) { onZero(); } }
    }
    var timer = setInterval(tick, 1000);
    tick();
    return function () { clearInterval(timer); };
  }

  window.push2faLive = { connect: connect, countdown: countdown };
})();
