/* The command-centre wall: draws the page's figures and map, and redraws them in place (no reload, no
   blank frame) whenever the console's live stream reports a change, and once a minute for the devices.
   Served from /static (the CSP allows no inline script); every word comes from data-words, and names
   from the data are set as text, never as HTML. */
(function () {
  "use strict";
  var wall = document.getElementById("wall");
  if (!wall) { return; }
  var words = JSON.parse(wall.dataset.words);
  var SLA = ["overdue", "due_soon", "on_time", "paused"];
  var SVG = "http://www.w3.org/2000/svg";
  var DEVICE_GLYPH = { alerting: "!", unknown: "?" };
  var refreshes = 0;

  function say(key, n) { return (words[key] || key).replace("{n}", String(n)); }

  function pick(figures, path) {
    return path.split(".").reduce(function (at, key) { return at == null ? at : at[key]; }, figures);
  }

  function setText(el, text) {
    if (el.textContent !== text) { el.textContent = text; }  // untouched numbers are not repainted
  }

  function cell(tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (cls) { el.className = cls; }
    return el;
  }

  function drawCategories(open) {
    var body = document.querySelector("#wall-categories tbody");
    var rows = document.createDocumentFragment();
    open.categories.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("th", c.name)).setAttribute("scope", "row");
      SLA.forEach(function (s) {
        var n = c.counts[s] || 0;
        var td = cell("td", String(n), "num sla-" + s + (n === 0 ? " zero" : s === "overdue" ? " hot" : ""));
        td.dataset.sla = s;
        tr.appendChild(td);
      });
      tr.appendChild(cell("td", String(c.total), "num total"));
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);  // one swap: the old rows stay until the new ones are ready
    document.getElementById("wall-no-open").hidden = open.categories.length > 0;
  }

  function svg(tag, attrs, text) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text != null) { el.textContent = text; }
    return el;
  }

  function drawTrend(days) {
    var box = document.getElementById("wall-trend");
    var w = Math.max(box.clientWidth, 200), h = Math.max(box.clientHeight, 120);
    var left = 36, right = 36, top = 26, bottom = 30;
    var max = Math.max(1, Math.max.apply(null, days.map(function (d) { return Math.max(d.opened, d.closed); })));
    var step = (w - left - right) / Math.max(days.length - 1, 1);
    function x(i) { return left + i * step; }
    function y(v) { return top + (h - top - bottom) * (1 - v / max); }
    var chart = svg("svg", { viewBox: "0 0 " + w + " " + h, role: "img",
      "aria-label": words.wall_trend });
    chart.appendChild(svg("line", { x1: left, x2: w - right, y1: h - bottom, y2: h - bottom, "class": "axis" }));
    ["opened", "closed"].forEach(function (key) {
      var points = days.map(function (d, i) { return x(i).toFixed(1) + "," + y(d[key]).toFixed(1); }).join(" ");
      chart.appendChild(svg("polyline", { points: points, "class": "line " + key }));
      days.forEach(function (d, i) {
        // Opened: round dots; closed: square ones — the series differ by shape and dash, not only colour.
        chart.appendChild(key === "opened"
          ? svg("circle", { cx: x(i), cy: y(d[key]), r: 7, "class": "dot-opened" })
          : svg("rect", { x: x(i) - 6, y: y(d[key]) - 6, width: 12, height: 12, "class": "dot-closed" }));
      });
    });
    days.forEach(function (d, i) {
      chart.appendChild(svg("text", { x: x(i), y: h - 6, "text-anchor": "middle" }, d.day));
      chart.appendChild(svg("text", { x: x(i), y: y(d.opened) - 12, "text-anchor": "middle", "class": "value" },
        String(d.opened)));
    });
    chart.dataset.days = JSON.stringify(days.map(function (d) { return [d.opened, d.closed]; }));
    box.replaceChildren(chart);
  }

  function drawFigures(figures) {
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var value = pick(figures, el.dataset.figure);
      setText(el, value == null ? "–" : String(value));
    });
    drawCategories(figures.open);
    drawTrend(figures.trend);
    setText(document.getElementById("wall-updated"), figures.updated);
  }

  /* The map: the vendored Leaflet, one layer swapped whole on each update (new drawn, then old removed). */
  var mapBox = document.getElementById("wall-map");
  var mapStatus = document.getElementById("wall-map-status");
  var map = window.L ? L.map(mapBox, { zoomControl: false, attributionControl: false, zoomSnap: 0.25 }) : null;
  var layer = null, fitted = false;

  function marker(feature, latlng) {
    var p = feature.properties;
    var title = p.kind === "case"
      ? ["#" + p.id, p.category_name, say("wall_sla_" + p.sla)].join(" · ")
      : [p.name, say("wall_device_" + (p.status === "unknown" ? "silent" : p.status))].join(" · ");
    var icon = p.kind === "case"
      ? L.divIcon({ className: "mk mk-case sla-" + p.sla, html: "⚑", iconSize: [36, 36], iconAnchor: [0, 40] })
      : L.divIcon({ className: "mk mk-device mk-" + p.status, html: DEVICE_GLYPH[p.status] || "?", iconSize: [30, 30] });
    var m = L.marker(latlng, { icon: icon, title: title, keyboard: false, zIndexOffset: p.kind === "case" ? 1000 : 0 });
    m.on("add", function () {
      var el = m.getElement();
      el.dataset.kind = p.kind;
      el.dataset.id = p.id;
      if (p.sla) { el.dataset.sla = p.sla; }
      el.setAttribute("aria-label", title);
    });
    return m;
  }

  function drawMap(collection) {
    if (!map) { return; }
    var next = L.geoJSON(collection, {
      style: function () { return { color: "#0b4f8a", weight: 2, dashArray: "6 4", fillColor: "#0b4f8a", fillOpacity: 0.08 }; },
      pointToLayer: marker,
    });
    next.addTo(map);
    if (layer) { map.removeLayer(layer); }
    layer = next;
    if (!fitted) {
      var bounds = next.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds, { padding: [30, 30] }); } else { map.setView([35.405, 116.59], 15); }
      fitted = true;
    }
    var props = collection.properties || {};
    var notes = [];
    if (props.unplaced) { notes.push(say("wall_map_unplaced", props.unplaced)); }
    if (props.truncated) { notes.push(words.wall_map_truncated); }
    setText(mapStatus, notes.join(" · "));
    mapBox.dataset.cases = String(collection.features.filter(function (f) { return f.properties.kind === "case"; }).length);
    mapBox.dataset.ready = "true";
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  }

  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }  // one refresh at a time; a change during it asks for one more
    busy = true;
    var figures = getJson(wall.dataset.figuresUrl).then(drawFigures);
    var places = getJson(wall.dataset.mapUrl).then(drawMap, function () { setText(mapStatus, words.wall_map_failed); });
    Promise.all([figures, places]).catch(function () { /* the next change or minute tries again */ }).then(function () {
      refreshes += 1;
      wall.dataset.refreshes = String(refreshes);
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  var liveBox = document.getElementById("wall-live");
  function live(on) {
    liveBox.className = "live " + (on ? "live-on" : "live-off");
    liveBox.dataset.state = on ? "on" : "off";
    setText(document.getElementById("wall-live-text"), on ? words.wall_live : words.wall_offline);
  }

  drawFigures(JSON.parse(wall.dataset.figures));
  getJson(wall.dataset.mapUrl).then(drawMap, function () { setText(mapStatus, words.wall_map_failed); });
  var stream = new EventSource("/console/stream");
  stream.addEventListener("change", refresh);
  var opened = false;
  stream.addEventListener("open", function () {
    live(true);
    if (opened) { refresh(); }  // changes made while the stream reconnected (each lives a minute)
    opened = true;
  });
  stream.addEventListener("error", function () {
    // A stream ends every minute and the browser reconnects at once: only a lasting gap is shown.
    setTimeout(function () { if (stream.readyState !== EventSource.OPEN) { live(false); } }, 5000);
  });
  setInterval(refresh, 60000);  // device health and the clock move without case events
})();
