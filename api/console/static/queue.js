// The live queue: SLA countdowns, and rows added, changed, re-sorted or removed in place as the server's
// event stream names the cases that changed — never a page reload, so scrolling and open controls stay.
// The page passes its words and its view on the script element (no inline script: see the CSP).
(function () {
  "use strict";
  var script = document.currentScript;
  var overdue = script.dataset.overdue;
  var query = script.dataset.query || "";
  var limit = parseInt(script.dataset.limit, 10) || 200;
  var maxIds = 200;  // cases one update asks for (the server's bound); more refreshes the whole list
  var table = document.getElementById("cases");
  var body = table.querySelector("tbody");
  var empty = document.getElementById("no-cases");
  var total = document.getElementById("queue-total");
  var shown = document.getElementById("queue-shown");
  var live = document.getElementById("queue-live");
  // Set once per page load: a test (or a person) can tell an in-place update from a reload.
  if (!document.documentElement.dataset.loadedAt) {
    document.documentElement.dataset.loadedAt = String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  function tick() {
    var cells = document.querySelectorAll(".countdown");
    for (var i = 0; i < cells.length; i++) {
      var cell = cells[i];
      var due = Date.parse(cell.dataset.due), start = Date.parse(cell.dataset.start), now = Date.now();
      var left = due - now, share = left / Math.max(due - start, 1);
      var mins = Math.floor(Math.abs(left) / 60000);
      var text = Math.floor(mins / 60) + "h" + String(mins % 60).padStart(2, "0") + "m";
      cell.textContent = left < 0 ? overdue + " " + text : text;
      cell.className = "countdown " + (left < 0 ? "due-over" : share < 0.2 ? "due-soon" : "due-ok");
    }
  }

  // Choosing a filter applies it at once (the form still works without this script).
  var form = document.getElementById("queue-filters");
  if (form) {
    var selects = form.querySelectorAll("select");
    for (var s = 0; s < selects.length; s++) {
      selects[s].addEventListener("change", function () { form.requestSubmit(); });
    }
  }

  function rowOf(id) { return body.querySelector('tr[data-case-id="' + id + '"]'); }

  function place(row) {
    var key = row.dataset.key, rows = body.children;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].dataset.key > key) { body.insertBefore(row, rows[i]); return; }
    }
    body.appendChild(row);
  }

  function fromHtml(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;  // server-rendered and escaped by the template, as the page itself
    return holder.querySelector("tr");
  }

  function showCounts(answer) {
    total.textContent = answer.total;
    shown.textContent = shown.dataset.template.replace("{shown}", body.children.length).replace("{total}", answer.total);
    var empties = body.children.length === 0;
    table.hidden = empties;
    empty.hidden = !empties;
    var options = document.querySelectorAll("#queue-filters select[data-facet] option[data-label]");
    for (var i = 0; i < options.length; i++) {
      var option = options[i], facet = option.parentElement.dataset.facet;
      var counted = (answer.counts[facet] || {})[option.value] || 0;
      option.textContent = option.dataset.label + " (" + counted + ")";
    }
  }

  function apply(answer) {
    if (answer.complete) { body.textContent = ""; }
    for (var g = 0; g < answer.gone.length; g++) {
      var leaving = rowOf(answer.gone[g]);
      if (leaving) { leaving.remove(); }
    }
    for (var r = 0; r < answer.rows.length; r++) {
      var old = rowOf(answer.rows[r].id);
      if (old) { old.remove(); }
      var row = fromHtml(answer.rows[r].html);
      if (row) { place(row); }
    }
    while (body.children.length > limit) { body.lastElementChild.remove(); }
    showCounts(answer);
    tick();
  }

  var pending = new Set(), whole = false, busy = false, timer = null;

  function flush() {
    timer = null;
    if (busy) { schedule(); return; }  // one request at a time; changes meanwhile wait for the next
    var ids = Array.from(pending);
    var all = whole || ids.length > maxIds;
    pending.clear();
    whole = false;
    if (!all && ids.length === 0) { return; }
    var url = "/console/queue/rows?" + query + (query ? "&" : "") + (all ? "" : "ids=" + ids.join(","));
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (reply) {
        if (!reply.ok) { throw new Error("HTTP " + reply.status); }
        return reply.json();
      })
      .then(apply)
      .catch(function () {
        // Not lost: ask again for the same cases with the next change (or in a few seconds).
        for (var i = 0; i < ids.length; i++) { pending.add(ids[i]); }
        whole = whole || all;
        setTimeout(schedule, 3000);
      })
      .then(function () { busy = false; });
  }

  // A burst of changes becomes one request: the stream sends at most one message a second, and the
  // page waits a moment more for the next before asking.
  function schedule() { if (timer === null) { timer = setTimeout(flush, 300); } }

  var stream = new EventSource("/console/stream?since=" + encodeURIComponent(script.dataset.since || ""));
  stream.addEventListener("change", function (event) {
    var news;
    try { news = JSON.parse(event.data); } catch (err) { news = { more: true, ids: [] }; }
    if (news.more) { whole = true; }
    for (var i = 0; i < (news.ids || []).length; i++) { pending.add(news.ids[i]); }
    if (pending.size > maxIds) { whole = true; pending.clear(); }
    schedule();
  });
  stream.addEventListener("open", function () { live.textContent = live.dataset.on; live.className = "queue-live on"; });
  stream.addEventListener("error", function () {
    // A stream ends every minute and the browser reconnects at once (Last-Event-ID): only a lasting gap shows.
    setTimeout(function () {
      if (stream.readyState !== EventSource.OPEN) { live.textContent = live.dataset.off; live.className = "queue-live off"; }
    }, 5000);
  });

  tick();
  setInterval(tick, 15000);
})();
