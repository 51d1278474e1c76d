/* The community map: draws the page's GeoJSON with the vendored Leaflet.
   Served from /static so the console's Content-Security-Policy needs no inline script; every word comes
   from the page's catalogue (data-words), and names from the data are set as text, never as HTML. */
(function () {
  "use strict";
  var box = document.getElementById("map");
  if (!box || !window.L) { return; }
  var words = JSON.parse(box.dataset.words);
  var tiles = box.dataset.tiles ? JSON.parse(box.dataset.tiles) : null;
  var statusLine = document.getElementById("map-status");
  var GLYPH = { ok: "✓", alerting: "!", unknown: "?", maintenance: "⚙" };

  function say(key, n) {
    return (words[key] || key).replace("{n}", String(n));
  }

  function textBox(text, cls) {
    var el = document.createElement("span");
    if (cls) { el.className = cls; }
    el.textContent = text;
    return el;
  }

  function escapeText(text) {
    var el = document.createElement("span");
    el.textContent = text || "";
    return el.innerHTML;
  }

  var map = L.map(box, { zoomControl: false, attributionControl: Boolean(tiles), zoomSnap: 0.25 });
  L.control.zoom({ zoomInTitle: words.map_zoom_in, zoomOutTitle: words.map_zoom_out }).addTo(map);
  if (tiles) {
    // The deployment's tile service (e.g. 天地图); its origin alone is added to the page's img-src.
    L.tileLayer(tiles.url, {
      subdomains: tiles.subdomains || "abc",
      attribution: escapeText(tiles.attribution),
      maxZoom: 19,
    }).addTo(map);
  }

  function placeStyle(feature) {
    if (feature.properties.kind === "grid") {
      return { color: "#0b4f8a", weight: 2, dashArray: "6 4", fillColor: "#0b4f8a", fillOpacity: 0.06 };
    }
    return { color: "#56616d", weight: 1.5, fillColor: "#56616d", fillOpacity: 0.25 };
  }

  function markerTitle(p) {
    if (p.kind === "device") {
      return [p.name, p.type_name, say("map_status_" + p.status), words.map_open_device].filter(Boolean).join(" · ");
    }
    var state = (words.states && words.states[p.status]) || p.status;
    return ["#" + p.id + " " + p.name, p.category_name, state, say("map_sla_" + p.sla), words.map_open_case]
      .filter(Boolean).join(" · ");
  }

  function marker(feature, latlng) {
    var p = feature.properties;
    var isCase = p.kind === "case";
    var icon = isCase
      ? L.divIcon({ className: "mk mk-case sla-" + p.sla, html: "⚑", iconSize: [26, 26], iconAnchor: [0, 30] })
      : L.divIcon({ className: "mk mk-device mk-" + p.status, html: GLYPH[p.status] || "?", iconSize: [22, 22] });
    // A case stands up and to the right of its place, over the device that raised it, not hiding it.
    return L.marker(latlng, { icon: icon, title: markerTitle(p), keyboard: true, zIndexOffset: isCase ? 1000 : 0 });
  }

  function open(url) {
    if (typeof url === "string" && url.indexOf("/console/") === 0) { window.location.assign(url); }
  }

  var labels = [];

  // A grid's name at the top of its outline, where it does not sit on the markers (once the map has a view).
  function labelGrids() {
    labels.forEach(function (label) {
      var bounds = label[0].getBounds();
      L.tooltip({ permanent: true, direction: "bottom", className: "map-label", offset: [0, 4] })
        .setLatLng([bounds.getNorth(), bounds.getCenter().lng])
        .setContent(textBox(label[1]))
        .addTo(map);
    });
  }

  function onEach(feature, layer) {
    var p = feature.properties;
    if (p.kind === "grid") {
      labels.push([layer, p.name]);
      return;
    }
    if (p.kind === "building") {
      layer.bindTooltip(textBox(p.name), { sticky: true });
      return;
    }
    layer.on("add", function () {
      var el = layer.getElement();
      el.dataset.kind = p.kind;
      el.dataset.id = p.id;
      el.dataset.status = p.status;
      if (p.sla) { el.dataset.sla = p.sla; }
      el.setAttribute("role", "link");
      el.setAttribute("aria-label", markerTitle(p));
    });
    layer.on("click", function () { open(p.url); });
    // Focused from the keyboard (Leaflet makes markers tabbable), Enter follows the link as a click does.
    layer.on("keypress", function (e) {
      if (e.originalEvent.key === "Enter") { open(p.url); }
    });
  }

  function draw(collection) {
    var order = { grid: 0, building: 1, device: 2, case: 3 };
    collection.features.sort(function (a, b) { return order[a.properties.kind] - order[b.properties.kind]; });
    var layer = L.geoJSON(collection, { style: placeStyle, pointToLayer: marker, onEachFeature: onEach });
    var bounds = layer.getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [16, 16] });
    } else {
      map.setView([35.405, 116.59], 16);  // nothing to show: any view will do, Leaflet needs one
    }
    layer.addTo(map);
    labelGrids();
    var notes = [];
    var props = collection.properties || {};
    if (!collection.features.length) { notes.push(words.map_no_places); }
    if (props.unplaced) { notes.push(say("map_unplaced", props.unplaced)); }
    if (props.unplaced_devices) { notes.push(say("map_unplaced_devices", props.unplaced_devices)); }
    if (props.truncated) { notes.push(say("map_truncated", collection.features.filter(function (f) {
      return f.properties.kind === "case";
    }).length)); }
    statusLine.textContent = notes.join(" · ");
    box.dataset.ready = "true";
  }

  fetch(box.dataset.geojson, { credentials: "same-origin", headers: { Accept: "application/geo+json, application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    })
    .then(draw)
    .catch(function () { statusLine.textContent = words.map_load_failed; });
})();
