// The bell (bell.html): polls the signed-in user's notifications every few seconds while the page is
// visible, shows the unread count and the latest messages as text (never as HTML: a case's words are
// whatever a resident typed), and marks them read. The words come from the server in the page's language.
(function () {
  "use strict";
  var bell = document.getElementById("bell");
  if (!bell) { return; }
  var count = document.getElementById("bell-count");
  var list = document.getElementById("bell-list");
  var status = document.getElementById("bell-status");
  var readButton = document.getElementById("bell-read");
  var POLL_MS = 3000;  // a new assignment shows within 5 s (tests/api/test_notifications_latency.py)

  function show(answer) {
    var unread = answer.unread || 0;
    count.textContent = String(unread);
    count.hidden = unread === 0;
    bell.classList.toggle("bell-has-unread", unread > 0);
    status.textContent = unread > 0 ? bell.dataset.unread.replace("{n}", String(unread)) : bell.dataset.none;
    readButton.hidden = unread === 0;
    list.replaceChildren();
    (answer.items || []).forEach(function (item) {
      var row = document.createElement("li");
      row.className = item.read ? "bell-item" : "bell-item bell-unread";
      var link = document.createElement("a");
      link.href = item.url;
      link.textContent = item.text;
      var when = document.createElement("time");
      when.dateTime = item.at;
      when.textContent = item.when;
      row.append(link, " ", when);
      list.append(row);
    });
  }

  function poll() {
    if (document.visibilityState === "hidden") { return; }
    fetch(bell.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer) { show(answer); } })
      .catch(function () { /* offline: the next poll tries again */ });
  }

  readButton.addEventListener("click", function () {
    fetch(bell.dataset.read, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": bell.dataset.csrf, "Content-Type": "application/json" },
      body: "{}"
    }).then(poll);
  });
  document.addEventListener("visibilitychange", poll);
  poll();
  setInterval(poll, POLL_MS);
})();
