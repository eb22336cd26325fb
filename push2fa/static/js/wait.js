// The waiting page: shows the phone's answer the instant the server pushes it, and on
// approval submits the CSRF-protected completion form. The server decides; this only shows.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("challenge");
    if (!root || !window.io) { return; }
    var states = ["pending", "approved", "denied", "expired", "cancelled", "consumed"];
    var submitted = false;
    var stopCountdown = window.push2faLive.countdown(document.getElementById("countdown"));

    function show(status, reason) {
      root.dataset.status = status;
      states.forEach(function (name) {
        var el = document.getElementById("state-" + name);
        if (el) { el.hidden = name !== status; }
      });
      var wrongNumber = status === "denied" && reason === "wrong_number";
      document.getElementById("denied-wrong-number").hidden = !wrongNumber;
      document.getElementById("denied-on-phone").hidden = wrongNumber;
      document.getElementById("complete-button").hidden = status !== "approved";
      if (status !== "pending") { stopCountdown(); }
      var live = document.getElementById("live-status");
      if (live) { live.textContent = "Status: " + status; }
    }

    // A code answers the login in its own request: from then on this page neither shows
    // nor completes anything, so the two can never race. The trust box goes with the code.
    ["totp-form", "recovery-form"].forEach(function (id) {
      var codeForm = document.getElementById(id);
      if (!codeForm) { return; }
      codeForm.addEventListener("submit", function () {
        submitted = true;
        var trust = document.getElementById("trust");
        if (trust && trust.checked && !codeForm.querySelector("input[name=trust]")) {
          var carried = document.createElement("input");
          carried.type = "hidden";
          carried.name = "trust";
          carried.value = "y";
          codeForm.appendChild(carried);
        }
      });
    });

    window.push2faLive.connect(root, {
      challenge: function (data) {
        if (submitted || !data || states.indexOf(data.status) === -1) { return; }
        show(data.status, data.reason);
        if (data.status === "approved") {
          submitted = true;
          document.getElementById("complete-form").submit();
        }
      }
    });
  });
})();
