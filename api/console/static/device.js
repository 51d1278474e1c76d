// The device page's time ranges: a range button or a drag across a chart (zoom) fetches each chart
// again for the new window (the server buckets it and draws it) and swaps it in; the address follows,
// so a reload or a shared link shows the same range. Without this script the links reload the page.
(function () {
  "use strict";
  var status = document.getElementById("chart-status");
  var ranges = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };

  function say(key) { status.textContent = key ? status.dataset[key] : ""; }

  function mark(current) {
    document.querySelectorAll("#ranges a, #custom-range button").forEach(function (el) {
      var name = el.dataset.range || "custom";
      if (name === current) { el.setAttribute("aria-current", "true"); } else { el.removeAttribute("aria-current"); }
    });
  }

  function load(since, until, name) {
    var slots = document.querySelectorAll(".chart-slot");
    say("loading");
    var jobs = Array.prototype.map.call(slots, function (slot) {
      var svg = slot.querySelector("svg");
      var url = svg.dataset.source + "&since=" + Math.round(since) + "&until=" + Math.round(until);
      return fetch(url, { credentials: "same-origin", headers: { Accept: "image/svg+xml" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (text) {
          var doc = new DOMParser().parseFromString(text, "image/svg+xml");
          var fresh = document.importNode(doc.documentElement, true);
          slot.replaceChild(fresh, slot.querySelector("svg"));
          zoomable(fresh);
        });
    });
    Promise.all(jobs).then(function () {
      say("");
      mark(name);
      var query = name === "custom" ? "?range=custom&since=" + local(since) + "&until=" + local(until) : "?range=" + name;
      history.replaceState(null, "", window.location.pathname + query);
    }, function () { say("failed"); });
  }

  // datetime-local text of a time, in the browser's zone (the page fills the form in the deployment's).
  function local(ms) {
    var d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
    return d.toISOString().slice(0, 16);
  }

  function zoomable(svg) {
    var box = svg.querySelector(".zoom-box");
    var left = +svg.dataset.left, right = +svg.dataset.right;
    var since = +svg.dataset.since, until = +svg.dataset.until;
    var start = null;
    function x(event) {
      var rect = svg.getBoundingClientRect();
      var v = (event.clientX - rect.left) / rect.width * svg.viewBox.baseVal.width;
      return Math.min(right, Math.max(left, v));
    }
    function time(v) { return since + (v - left) / (right - left) * (until - since); }
    svg.addEventListener("pointerdown", function (e) { start = x(e); svg.setPointerCapture(e.pointerId); });
    svg.addEventListener("pointermove", function (e) {
      if (start === null) { return; }
      var now = x(e);
      box.setAttribute("x", Math.min(start, now));
      box.setAttribute("width", Math.abs(now - start));
      box.setAttribute("visibility", "visible");
    });
    svg.addEventListener("pointerup", function (e) {
      if (start === null) { return; }
      var a = time(Math.min(start, x(e))), b = time(Math.max(start, x(e)));
      start = null;
      box.setAttribute("visibility", "hidden");
      if (b - a >= 60e3) { load(a, b, "custom"); }
    });
  }

  document.querySelectorAll("#ranges a").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var now = Date.now();
      load(now - ranges[link.dataset.range], now, link.dataset.range);
    });
  });
  document.querySelectorAll(".chart-slot svg").forEach(zoomable);
}());
