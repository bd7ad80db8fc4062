"""The viewer's HTML page: Leaflet (shipped in `static/`, BSD-2-Clause) and our script inlined.

The page fetches nothing from the network: Leaflet's JavaScript and CSS (with its images as data
URIs) and the layers are in the file; a large scene's tiles are relative URLs to the folder beside
it. A Content-Security-Policy restricts images to the page's own origin, data: and blob: URLs.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from typing import Any

GENERATOR = "crossearth view"

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'self' file:; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob: file:; connect-src 'none'"
)

_STYLE = """
html, body, #map { height: 100%; margin: 0; background: #e8e8e8; }
body { font: 13px/1.4 system-ui, sans-serif; }
.ce-pixelated { image-rendering: pixelated; }
.ce-pixelated img, img.ce-pixelated { image-rendering: pixelated; }
.ce-panel { background: #fff; padding: 8px 10px; border-radius: 6px; max-height: 70vh;
  overflow-y: auto; box-shadow: 0 1px 4px rgba(0,0,0,.35); min-width: 220px; }
.ce-panel h1 { font-size: 14px; margin: 0 0 6px; }
.ce-panel table { border-collapse: collapse; width: 100%; }
.ce-panel td { padding: 1px 4px; white-space: nowrap; }
.ce-panel td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ce-panel tr.ce-hover { background: #ffe9a8; }
.ce-panel tr.ce-off td { opacity: .45; }
.ce-swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #444;
  vertical-align: middle; }
.ce-readout { margin-top: 6px; min-height: 2.8em; color: #222; }
.ce-notes { margin-top: 6px; color: #7a4b00; font-size: 11px; white-space: normal; }
.ce-opacity { display: flex; align-items: center; gap: 6px; margin-bottom: 6px; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var C = JSON.parse(document.getElementById("ce-config").textContent);
  var colours = {};
  C.classes.forEach(function (c) { colours[c.id] = c.color; });
  var names = {};
  C.classes.forEach(function (c) { names[c.id] = c.name; });
  var map = L.map("map", {
    crs: C.pixel ? L.CRS.Simple : L.CRS.EPSG3857,
    zoomSnap: C.tiles ? 1 : 0.25, minZoom: C.pixel ? -12 : 0, maxZoom: C.maxZoom
  });
  var bounds = L.latLngBounds(C.bounds);
  map.fitBounds(bounds);
  map.createPane("ce-image").style.zIndex = 250;
  map.createPane("ce-classes").style.zIndex = 300;
  var opacity = C.opacity, hidden = {}, overlays = {}, classLayer = null, imageLayer = null;
  function tiles(url, pane, cls) {
    return L.tileLayer(url, {pane: pane, className: cls, bounds: bounds, tileSize: 256,
      minNativeZoom: C.tiles.zmin, maxNativeZoom: C.tiles.zmax, minZoom: 0, maxZoom: C.maxZoom,
      opacity: pane === "ce-classes" ? opacity : 1});
  }
  if (C.tiles && C.tiles.image) imageLayer = tiles(C.tiles.image, "ce-image", "");
  else if (C.image) imageLayer = L.imageOverlay(C.image, bounds, {pane: "ce-image"});
  if (imageLayer) { imageLayer.addTo(map); overlays["Image"] = imageLayer; }
  if (C.tiles) {
    classLayer = tiles(C.tiles.classes, "ce-classes", "ce-pixelated").addTo(map);
    overlays["Classes"] = classLayer;
  }
  if (C.polygons) {
    var rgb = function (c) { return "rgb(" + c.join(",") + ")"; };
    var polygons = L.geoJSON(C.polygons, {
      style: function () { return {color: "#111", weight: 1, fill: false, opacity: 0.8}; },
      onEachFeature: function (f, layer) {
        var p = f.properties, div = document.createElement("div");
        var sw = document.createElement("span");
        sw.className = "ce-swatch"; sw.style.background = rgb(colours[p.class_id] || [0, 0, 0]);
        div.appendChild(sw);
        div.appendChild(document.createTextNode(" " + p.class_name +
          (p.area === null ? "" : ", " + formatArea(p.area / 1e4))));
        layer.bindPopup(div);
      }
    }).addTo(map);
    overlays["Polygons"] = polygons;
  }
  var layersControl = L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  if (!C.pixel) L.control.scale({imperial: false}).addTo(map);

  function formatArea(ha) {
    if (ha === null || ha === undefined || isNaN(ha)) return "";
    if (ha < 0.01) return Math.round(ha * 1e4).toLocaleString("en") + " m²";
    if (ha < 10) return ha.toFixed(2) + " ha";
    if (ha < 1000) return ha.toFixed(1) + " ha";
    return Math.round(ha).toLocaleString("en") + " ha";
  }

  // The panel: name, opacity, legend, pointer read-out, notes.
  var panel = L.control({position: "bottomright"});
  var rows = {}, readout;
  panel.onAdd = function () {
    var div = L.DomUtil.create("div", "ce-panel");
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    var h = document.createElement("h1"); h.textContent = C.name; div.appendChild(h);
    var op = document.createElement("label"); op.className = "ce-opacity";
    op.appendChild(document.createTextNode("Class opacity"));
    var slider = document.createElement("input");
    slider.type = "range"; slider.min = 0; slider.max = 100; slider.value = Math.round(opacity * 100);
    slider.id = "ce-opacity";
    slider.addEventListener("input", function () {
      opacity = slider.value / 100;
      if (classLayer) classLayer.setOpacity(opacity);
    });
    op.appendChild(slider); div.appendChild(op);
    var table = document.createElement("table"); table.id = "ce-legend";
    var head = table.insertRow();
    ["", "class", C.pixel ? "pixels" : "area", "share"].forEach(function (t) {
      var th = document.createElement("th"); th.textContent = t; head.appendChild(th);
    });
    C.classes.forEach(function (c) {
      var tr = table.insertRow(); rows[c.id] = tr; tr.dataset.classId = c.id;
      var td = tr.insertCell();
      if (!C.tiles) {
        var box = document.createElement("input"); box.type = "checkbox"; box.checked = true;
        box.title = "show " + c.name;
        box.addEventListener("change", function () {
          if (box.checked) delete hidden[c.id]; else hidden[c.id] = true;
          tr.classList.toggle("ce-off", !box.checked);
          drawClasses();
        });
        td.appendChild(box);
      }
      var sw = document.createElement("span"); sw.className = "ce-swatch";
      sw.style.background = "rgb(" + c.color.join(",") + ")"; td.appendChild(sw);
      tr.insertCell().textContent = c.name;
      var area = tr.insertCell(); area.className = "num";
      area.textContent = c.area_ha === null ? c.pixels.toLocaleString("en") : formatArea(c.area_ha);
      var share = tr.insertCell(); share.className = "num";
      share.textContent = (100 * c.share).toFixed(1) + " %";
    });
    div.appendChild(table);
    readout = document.createElement("div"); readout.className = "ce-readout"; readout.id = "ce-readout";
    readout.textContent = "Point at the map to read the class.";
    div.appendChild(readout);
    if (C.notes.length) {
      var notes = document.createElement("div"); notes.className = "ce-notes";
      notes.textContent = C.notes.join(" · "); div.appendChild(notes);
    }
    return div;
  };
  panel.addTo(map);

  // The lookup grid: red = class id, green = confidence (255: none), on C.grid.
  var lookup = null;
  function drawClasses() {
    if (C.tiles || !lookup) return;
    var g = C.grid, cv = document.createElement("canvas");
    cv.width = g.width; cv.height = g.height;
    var ctx = cv.getContext("2d"), out = ctx.createImageData(g.width, g.height), o = out.data;
    for (var i = 0, n = g.width * g.height; i < n; i++) {
      var id = lookup[4 * i], c = colours[id];
      if (c && !hidden[id]) {
        o[4 * i] = c[0]; o[4 * i + 1] = c[1]; o[4 * i + 2] = c[2]; o[4 * i + 3] = 255;
      }
    }
    ctx.putImageData(out, 0, 0);
    var url = cv.toDataURL("image/png");
    if (classLayer) { classLayer.setUrl(url); return; }
    classLayer = L.imageOverlay(url, bounds, {pane: "ce-classes", opacity: opacity,
      className: "ce-pixelated"}).addTo(map);
    layersControl.addOverlay(classLayer, "Classes");
  }
  // Large scenes: the class and confidence of the deepest tile level, fetched as scripts (a page
  // opened from disk may run scripts beside it but may not read the pixels of its images).
  var fine = {}, lastLatLng = null;
  // the zoom from which a cell of the embedded lookup grid covers more than a screen pixel
  var fineFrom = C.pixel ? 0 : Math.log2(2 * 20037508.342789244 / (256 * C.grid.dx));
  window.crossearthLookup = function (key, uri) {
    var im = new Image();
    im.onload = function () {
      var cv = document.createElement("canvas");
      cv.width = im.width; cv.height = im.height;
      var ctx = cv.getContext("2d", {willReadFrequently: true});
      ctx.drawImage(im, 0, 0);
      fine[key] = ctx.getImageData(0, 0, im.width, im.height).data;
      if (lastLatLng) show(lastLatLng);
    };
    im.src = uri;
  };
  function fineAt(latlng) {
    if (!C.tiles || !C.tiles.lookup || map.getZoom() < fineFrom) return undefined;
    var z = C.tiles.zmax, p = map.project(latlng, z);
    var tx = Math.floor(p.x / 256), ty = Math.floor(p.y / 256);
    var key = z + "/" + tx + "/" + ty, tile = fine[key];
    if (tile === undefined) {
      fine[key] = "loading";
      var script = document.createElement("script");
      script.src = C.tiles.lookup.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
      script.onerror = function () {
        fine[key] = "missing";
        if (lastLatLng) show(lastLatLng);
      };
      document.head.appendChild(script);
      return undefined;
    }
    if (typeof tile === "string") return undefined;  // loading, or no tile (no data there)
    var i = 4 * ((Math.floor(p.y) - ty * 256) * 256 + (Math.floor(p.x) - tx * 256));
    return {id: tile[i], confidence: tile[i + 1]};
  }
  function at(latlng) {
    var f = fineAt(latlng);
    if (f) return f;
    if (!lookup) return null;
    var p = map.options.crs.project(latlng), g = C.grid;
    var col = Math.floor((p.x - g.x0) / g.dx), row = Math.floor((g.y0 - p.y) / g.dy);
    if (col < 0 || row < 0 || col >= g.width || row >= g.height) return null;
    var i = 4 * (row * g.width + col);
    return {id: lookup[i], confidence: lookup[i + 1]};
  }
  var hovered = null;
  function show(latlng) {
    lastLatLng = latlng;
    var v = at(latlng), text;
    var where = C.pixel
      ? "row " + Math.floor(-latlng.lat) + ", column " + Math.floor(latlng.lng)
      : latlng.lat.toFixed(6) + ", " + latlng.lng.toFixed(6);
    if (hovered !== null && rows[hovered]) rows[hovered].classList.remove("ce-hover");
    hovered = null;
    if (!v) text = "outside the scene";
    else if (v.id === 255) text = "no data";
    else {
      text = names[v.id] !== undefined ? names[v.id] : "class " + v.id;
      if (v.confidence !== 255) text += " · confidence " + v.confidence + " %";
      hovered = v.id;
      if (rows[v.id]) rows[v.id].classList.add("ce-hover");
    }
    readout.textContent = text + " · " + where;
    readout.dataset.classId = v && v.id !== 255 ? v.id : "";
  }
  map.on("mousemove", function (e) { show(e.latlng); });
  map.on("click", function (e) { show(e.latlng); });

  var img = new Image();
  img.onload = function () {
    var cv = document.createElement("canvas");
    cv.width = img.width; cv.height = img.height;
    var ctx = cv.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(img, 0, 0);
    lookup = ctx.getImageData(0, 0, img.width, img.height).data;
    drawClasses();
    var m = /(?:^#|&)at=(-?[\d.]+),(-?[\d.]+)(?:,([\d.]+))?/.exec(location.hash);
    if (m) {
      var ll = L.latLng(parseFloat(m[1]), parseFloat(m[2]));
      if (m[3]) map.setView(ll, parseFloat(m[3]), {animate: false});
      L.circleMarker(ll, {radius: 6, color: "#000", weight: 2, fill: false}).addTo(map);
      show(ll);
    }
    document.body.dataset.ready = "1";
  };
  img.src = C.data;
  window.crossearthMap = map;
})();
"""


def leaflet_assets() -> tuple[str, str]:
    """(JavaScript, CSS) of the shipped Leaflet, the CSS's images inlined as data URIs."""
    static = resources.files("crossearth.viewer") / "static"
    js = (static / "leaflet.js").read_text(encoding="utf-8")
    css = (static / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        image = static / "images" / match.group(1)
        if not image.is_file():
            return "none"  # an icon the viewer never shows (Leaflet's default marker)
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\(images/([\w.-]+)\)", inline, css)
    return js, css


def render_page(config: dict[str, Any]) -> str:
    """The whole HTML document for a viewer `config` (see `crossearth.viewer.build`)."""
    js, css = leaflet_assets()
    data = json.dumps(config, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    title = html.escape(f"{config['name']} · crossearth")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="generator" content="{GENERATOR}">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{css}\n{_STYLE}</style>\n</head>\n<body>\n"
        '<div id="map"></div>\n'
        f'<script type="application/json" id="ce-config">{data}</script>\n'
        f"<script>\n{js}\n</script>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )
