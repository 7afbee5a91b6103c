// The group notice form: only the chooser that belongs to the chosen audience is enabled (and so sent).
"use strict";
(function () {
  var audience = document.getElementById("audience");
  if (!audience) return;
  function show() {
    document.querySelectorAll("[data-for]").forEach(function (input) {
      var on = input.getAttribute("data-for") === audience.value;
      input.disabled = !on;
      input.closest(".field").hidden = !on;
    });
  }
  audience.addEventListener("change", show);
  show();
})();
