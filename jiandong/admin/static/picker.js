// A search-as-you-type picker: an input with data-search="<url>" and a <datalist> (its list attribute) gets the
// cards matching what is typed, from <url>?q=... (JSON: [{value, team}]). A file of its own: the console's
// Content-Security-Policy runs no inline script. Without it the field still takes a name, number or phone.
(function () {
  "use strict";
  var timer = null;
  var asked = "";
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.getAttribute("data-search") || !input.list) { return; }
    var term = input.value.trim();
    window.clearTimeout(timer);
    // A choice from the list ends with its #id: nothing more to look up.
    if (!term || /#\d+$/.test(term) || term === asked) { return; }
    timer = window.setTimeout(function () {
      asked = term;
      fetch(input.getAttribute("data-search") + "?q=" + encodeURIComponent(term),
            { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (resp) { return resp.ok ? resp.json() : []; })
        .then(function (items) {
          var list = input.list;
          while (list.firstChild) { list.removeChild(list.firstChild); }
          items.forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.value;
            option.label = item.team;
            list.appendChild(option);
          });
        })
        .catch(function () { asked = ""; });
    }, 200);
  });
})();
