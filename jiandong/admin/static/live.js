// Keeps a part of a console page up to date: every element with data-poll="<url>" is reloaded from that
// URL every data-every milliseconds (default 2000). Our own few lines; nothing is fetched from elsewhere.
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-poll");
    // A list whose newest entries come last (the chat) opens scrolled to them.
    if (el.getAttribute("data-stick") === "bottom") { el.scrollTop = el.scrollHeight; }
    var every = parseInt(el.getAttribute("data-every") || "2000", 10);
    var busy = false;
    setInterval(function () {
      // A form being typed into (a mute's reason) is not replaced under the user's fingers.
      if (busy || el.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") { return; }
      busy = true;
      fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "poll"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== el.innerHTML) {
            var atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
            el.innerHTML = html;
            el.setAttribute("data-updated", String(Date.now()));
            if (atBottom) { el.scrollTop = el.scrollHeight; }
          }
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
  }
  document.querySelectorAll("[data-poll]").forEach(poll);
})();
