// Asks before a form with data-confirm="question" (or a button with it) is sent; {name} in the question is
// the value of the form's field of that name, so the question states what is about to be done. A file of its own, not an
// onclick attribute: the console's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question) {
      question = question.replace(/\{([a-z_]+)\}/g, function (whole, name) {
        var input = form.elements.namedItem(name);
        return input && "value" in input ? input.value : whole;
      });
      if (!window.confirm(question)) { event.preventDefault(); }
    }
  }, true);
})();
