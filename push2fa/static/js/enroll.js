// The enrolment page: moves on by itself when the server reports that the phone enrolled,
// or shows the expired state. The server watches the push service; this page only listens.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("enrollment");
    if (!root || !window.io || root.dataset.status !== "pending") { return; }
    window.push2faLive.countdown(document.getElementById("countdown"));
    window.push2faLive.connect(root, {
      enrollment: function (data) {
        if (data && (data.status === "completed" || data.status === "expired")) {
          window.location.assign(root.dataset.doneUrl);
        }
      }
    });
  });
})();
