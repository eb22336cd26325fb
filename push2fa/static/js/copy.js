// "Copy" buttons: copy the text of the element named by data-copy-target.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button || !navigator.clipboard) { return; }
    var source = document.getElementById(button.dataset.copyTarget);
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });
})();
