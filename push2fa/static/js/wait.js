// The waiting page: shows the phone's answer the instant the server pushes it, and on
// approval submits the CSRF-protected completion form. The server decides; this only shows.
// One card: the heading, text and actions follow the state. Screen readers hear each change
// of state once (#live-status), never the countdown's every second.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("challenge");
    if (!root || !window.io) { return; }
    var states = ["pending", "approved", "denied", "expired", "cancelled", "consumed", "refused"];
    var announcements = {
      approved: "Approved on your phone. Logging you in.",
      denied: "Request denied.",
      expired: "Request expired.",
      cancelled: "Request cancelled.",
      consumed: "This request has already been used.",
      refused: "No request could be sent to your phone."
    };
    var submitted = false;
    var stopCountdown = window.push2faLive.countdown(document.getElementById("countdown"));

    function setHidden(id, hidden) {
      var el = document.getElementById(id);
      if (el) { el.hidden = hidden; }
    }

    function show(status, reason) {
      var changed = root.dataset.status !== status;
      root.dataset.status = status;
      states.forEach(function (name) { setHidden("state-" + name, name !== status); });
      var wrongNumber = status === "denied" && reason === "wrong_number";
      setHidden("denied-wrong-number", !wrongNumber);
      setHidden("denied-on-phone", wrongNumber);
      setHidden("complete-form", status !== "pending" && status !== "approved");
      setHidden("complete-button", status !== "approved");
      setHidden("pending-actions", status !== "pending");
      setHidden("no-phone", status !== "pending");
      var title = document.getElementById("wait-title");
      var text = title.getAttribute("data-title-" + status);
      if (text) { title.textContent = text; }
      if (status !== "pending") { stopCountdown(); }
      var live = document.getElementById("live-status");
      if (live && changed && announcements[status]) { live.textContent = announcements[status]; }
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
