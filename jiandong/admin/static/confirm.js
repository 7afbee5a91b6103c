// Asks before a form with data-confirm="question" (or a button with it) is sent. A file of its own, not an
// onclick attribute: the console's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
})();
