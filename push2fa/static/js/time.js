// Renders <time data-format="relative|date"> in the reader's own time zone and language.
(function () {
  "use strict";
  var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
               ["hour", 3600], ["minute", 60], ["second", 1]];

  function relative(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    var rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || units[i][0] === "second") {
        return rtf.format(Math.round(seconds / units[i][1]), units[i][0]);
      }
    }
    return date.toLocaleString();
  }

  function render() {
    document.querySelectorAll("time[data-format]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      el.title = date.toLocaleString();
      el.textContent = el.dataset.format === "relative" ? relative(date) : date.toLocaleDateString();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    render();
    setInterval(render, 30000);
  });
})();
