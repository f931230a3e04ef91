"""``report.html``: one self-contained page, viewed without network.

Sections: an interactive map per AOI (Leaflet, vendored into the page: a layer per scan date from
:mod:`pipelines.analysis.map_layers`, with ``report --imagery`` the date's scenes under the tiles, events
outlined and their clearings filled, a click on an event opens its card), coverage per date, the events
with their tile and cleared areas and before/after pictures, alert area per zone, label areas, the
alerts, the model card. The pictures are PNGs beside the page
(``events/``); everything else is inline.

Elements the tests look at carry ids: ``alert-count``, ``event-count``, ``map-<aoi>`` (each map) and
``event-<event_id>`` (each event's card); ``window.reportMaps[aoi]`` holds each Leaflet map, its date
layers, its clearings and imagery overlays and ``show(date)``.

Leaflet comes from the npm registry (``npm pack leaflet@1.9.4``, which ``make`` runs once into
``pipelines/analysis/vendor/``) and is written into every page, so the page needs nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import shapely
from shapely.geometry import shape

from pipelines.analysis.clearings import Clearing
from pipelines.analysis.events import Event
from pipelines.analysis.map_layers import STATES, AoiMap
from pipelines.analysis.rules import Alert
from planet_core.errors import UserError
from planet_core.labels import LAND_LABELS
from planet_model.bundle import BundleMeta

LEAFLET_VERSION = "1.9.4"
#: The vendored Leaflet, package data (``make vendor`` puts it there with ``npm pack``).
VENDOR = resources.files("pipelines.analysis") / "vendor" / f"leaflet-{LEAFLET_VERSION}"
#: Cards, table rows and event outlines on the map shown in the page (largest events first); the files hold
#: them all. The outlines bound the page's size whatever the AOI: about 400 bytes each (:func:`_features`).
MAX_EVENTS, MAX_ALERTS, MAX_MAP_EVENTS = 200, 1000, 20_000
#: How far (degrees, about 0.5 m) a map outline may stray from the geometry: a sixth of a 3-m pixel, where
#: a tile outline reprojected from UTM carries 21 points an edge that lie within millimetres of a line.
OUTLINE_TOLERANCE = 5e-6
ALERT_COLOUR = "#d50000"
CLEARING_COLOUR = "#ff6d00"
#: The tiles' opacity while the imagery layer is on: the scenes show through, the states still read.
TRANSLUCENT = 0.45
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #212121; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { padding: 3px 8px; white-space: nowrap; border-bottom: 1px solid #eee; }
th { text-align: left; background: #fafafa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.map { height: 520px; border: 1px solid #ccc; background: #fff; margin: 8px 0 4px; }
.map .tiles { image-rendering: pixelated; }
.legend span { display: inline-block; margin-right: 14px; } .swatch { display: inline-block; width: 12px;
height: 12px; margin-right: 4px; vertical-align: -1px; border: 1px solid #999; }
.bar { display: inline-block; height: 9px; background: #8d6e63; vertical-align: 0; margin-left: 6px; }
details.event { border: 1px solid #ddd; border-radius: 4px; padding: 6px 10px; margin: 6px 0; }
details.event summary { cursor: pointer; } .pair { display: flex; gap: 12px; margin-top: 8px; }
.pair figure { margin: 0; }
.pair img { width: 192px; height: auto; image-rendering: pixelated; border: 1px solid #ccc; }
.figures img { max-width: 100%; } .muted { color: #757575; } .high { color: #b71c1c; font-weight: 600; }
"""
SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('map-data').textContent);
  window.reportMaps = {};
  const openEvent = function (id) {
    const card = document.getElementById('event-' + id);
    if (card) { card.open = true; card.scrollIntoView({block: 'center'}); }
  };
  for (const a of data) {
    const map = L.map('map-' + a.aoi, {zoomSnap: 0.25, attributionControl: false});
    const bounds = L.latLngBounds(a.bounds);
    const layers = {};
    for (const l of a.layers) { layers[l.date] = L.imageOverlay(l.src, bounds, {className: 'tiles'}); }
    let shown = a.layers[a.layers.length - 1].date;
    // The scenes under the tiles (report --imagery): the date's mosaic in a pane below the tiles, which
    // turn translucent while it is on.
    map.createPane('imagery').style.zIndex = 350;
    const imagery = L.layerGroup();
    const drawImagery = function () {
      imagery.clearLayers();
      if (a.imagery[shown]) { imagery.addLayer(L.imageOverlay(a.imagery[shown], bounds, {pane: 'imagery'})); }
    };
    const tileOpacity = function () {
      const value = map.hasLayer(imagery) ? %(translucent)s : 1;
      for (const d in layers) { layers[d].setOpacity(value); }
    };
    let events = null;
    const cleared = L.layerGroup().addTo(map);  // the clearings of the events shown: an overlay to switch off
    const drawEvents = function (date) {  // the events known on the date shown, and their clearings
      if (events) { map.removeLayer(events); }
      cleared.clearLayers();
      cleared.addLayer(L.geoJSON(a.clearings, {
        interactive: false,
        filter: function (f) { return f.properties.detected_date <= date; },
        style: {color: '%(clearing)s', weight: 1, fillColor: '%(clearing)s', fillOpacity: 0.55, opacity: 1}}));
      events = L.geoJSON(a.events, {
        filter: function (f) { return f.properties.first_detected <= date; },
        style: {color: '%(alert)s', weight: 2.5, fill: true, fillOpacity: 0, opacity: 1},
        onEachFeature: function (f, layer) {
          layer.bindTooltip(f.properties.label);
          layer.on('click', function () { openEvent(f.id); });
        }}).addTo(map);
    };
    layers[shown].addTo(map);
    drawEvents(shown);
    const overlays = {};
    if (Object.keys(a.imagery).length) {
      overlays['imagery'] = imagery;
      drawImagery();
      imagery.addTo(map);
    }
    if (a.clearings.features.length) { overlays['clearings'] = cleared; }
    if (a.places) {
      overlays[a.places.name] = L.geoJSON(a.places, {interactive: false,
        style: {color: '#000', weight: 1.2, dashArray: '3,2', fill: false}}).addTo(map);
    }
    L.control.layers(layers, overlays, {collapsed: false}).addTo(map);
    L.control.scale({imperial: false}).addTo(map);
    map.on('baselayerchange', function (e) { shown = e.name; drawEvents(shown); drawImagery(); });
    map.on('overlayadd overlayremove', tileOpacity);
    tileOpacity();
    map.fitBounds(bounds);
    window.reportMaps[a.aoi] = {map: map, layers: layers, bounds: bounds, clearings: cleared, imagery: imagery,
                                show: function (date) {
                                  for (const d in layers) { map.removeLayer(layers[d]); }
                                  shown = date; layers[date].addTo(map); drawEvents(date); drawImagery();
                                  tileOpacity(); }};
  }
})();
""" % {"alert": ALERT_COLOUR, "clearing": CLEARING_COLOUR, "translucent": TRANSLUCENT}


@dataclass(frozen=True)
class Content:
    """Everything the page shows, computed by :func:`pipelines.analysis.report.run`."""

    scans: str
    dates: Sequence[dt.date]
    maps: Mapping[str, AoiMap]
    found: Sequence[Alert]
    events: Sequence[Event]
    clearings: Sequence[Clearing] | None  # None: not delineated (report --no_clearings)
    coverage: Sequence[dict]
    trends: Sequence[dict]
    zones: Sequence[dict] | None
    places: Sequence[dict] | None
    scored: Mapping | None
    meta: BundleMeta | None
    figures: Mapping[str, bytes]
    min_clear_fraction: float
    highest_probability: float
    pictured: frozenset[str] = frozenset()  # the events whose pictures were drawn (report --max_pictures)
    #: The map's imagery layers (report --imagery): WebP bytes by AOI and scan date.
    imagery: Mapping[str, Mapping[dt.date, bytes]] = field(default_factory=dict)


def leaflet() -> dict[str, str]:
    """Leaflet's script and style sheet, from the vendored copy; a set-up error when it is missing."""
    try:
        return {name: (VENDOR / name).read_text(encoding="utf-8") for name in ("leaflet.js", "leaflet.css")}
    except OSError:
        raise UserError(f"Leaflet {LEAFLET_VERSION} is not in {VENDOR}: run `make vendor` (it runs "
                        f"npm pack leaflet@{LEAFLET_VERSION} once)") from None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(share: float | None) -> str:
    """A share as a percentage; "n/a" when there is none, and never "-0.0 %" (a rounding of a tiny negative)."""
    return "n/a" if share is None else f"{0.0 if abs(share) < 5e-4 else share:.1%}"


def _map_data(content: Content) -> str:
    """The maps' data as JSON text (the page's ``map-data``): per AOI its bounds, date layers, imagery, and
    its events' and clearings' outlines (:func:`_features`)."""
    out = []
    largest = _largest(content.events, MAX_MAP_EVENTS)
    for aoi, m in sorted(content.maps.items()):
        west, south, east, north = m.bounds
        shown = [e for e in largest if e.aoi == aoi]
        events = _features([e.event_id for e in shown], [e.geometry for e in shown], [
            {"first_detected": e.first_detected.isoformat(),
             "label": ("" if e.cleared_ha is None else f"{e.cleared_ha:.1f} ha cleared in ")
             + f"{e.area_ha:.1f} ha of tiles, {e.confidence}, {e.status}: " + ", ".join(n for n, _ in e.labels_gained)}
            for e in shown])
        ids = {e.event_id for e in shown}
        cleared = [c for c in content.clearings or [] if c.event_id in ids]
        clearings = _features([c.clearing_id for c in cleared], [c.geometry for c in cleared],
                              [{"detected_date": c.detected_date.isoformat()} for c in cleared])
        box = shapely.box(west, south, east, north)
        places = [p for p in content.places or [] if shape(p["geometry"]).intersects(box)]
        rest = json.dumps({
            "aoi": aoi, "bounds": [[south, west], [north, east]],
            "places": {"type": "FeatureCollection", "name": "known change places", "features": places}
            if places else None,
            "layers": [{"date": d.isoformat(), "src": "data:image/png;base64,"
                        + base64.b64encode(m.png(d)).decode()} for d in sorted(m.rasters)],
            "imagery": {d.isoformat(): "data:image/webp;base64," + base64.b64encode(picture).decode()
                        for d, picture in sorted(content.imagery.get(aoi, {}).items())}}, separators=(",", ":"))
        out.append(f'{{"events":{events},"clearings":{clearings},{rest[1:]}')
    return f"[{','.join(out)}]"


def _features(ids: Sequence[str], geometries: Sequence[bytes], properties: Sequence[dict]) -> str:
    """A FeatureCollection of map outlines as JSON text: each WKB geometry simplified within
    :data:`OUTLINE_TOLERANCE` and its coordinates rounded to 6 decimals (0.1 m). An event of tiles reprojected
    from UTM keeps its corners and drops the points its edges were densified with, 20 times fewer; the files
    beside the page keep every vertex. Written by GEOS for all outlines at once (``shapely.to_geojson``; a few
    rounded numbers come out with 17 digits, the same value), not a dict of coordinate lists per outline."""
    simple = shapely.simplify(shapely.from_wkb(list(geometries)), OUTLINE_TOLERANCE, preserve_topology=True)
    outlines = shapely.to_geojson(shapely.transform(simple, lambda xy: xy.round(6))) if len(ids) else []
    dumps = functools.partial(json.dumps, separators=(",", ":"))
    features = ",".join(f'{{"type":"Feature","id":{dumps(i)},"geometry":{outline},"properties":{dumps(p)}}}'
                        for i, outline, p in zip(ids, outlines, properties, strict=True))
    return f'{{"type":"FeatureCollection","features":[{features}]}}'


def _largest(events: Sequence[Event], n: int) -> list[Event]:
    return sorted(events, key=lambda e: (-e.area_ha, e.event_id))[:n]


def _maps(content: Content) -> str:
    legend = "".join(f'<span><i class="swatch" style="background:{colour}"></i>{_e(text)}</span>'
                     for _, colour, text in reversed(STATES))
    legend += f'<span><i class="swatch" style="border:2px solid {ALERT_COLOUR}"></i>event (alert tiles)</span>'
    if content.clearings is not None:
        legend += f'<span><i class="swatch" style="background:{CLEARING_COLOUR}"></i>clearing (changed pixels)</span>'
    if content.places:
        legend += '<span><i class="swatch" style="border:1px dashed #000"></i>known change place</span>'
    maps = []
    if len(content.events) > MAX_MAP_EVENTS:
        maps.append(f"<p class='muted'>The map outlines the {MAX_MAP_EVENTS} largest of {len(content.events)} events; "
                    "events.geojson has them all.</p>")
    for aoi, m in sorted(content.maps.items()):
        scale = "" if m.k == 1 else f" (one pixel per {m.k} x {m.k} tiles: the most telling state of them)"
        maps.append(f"<h3>{_e(aoi)}</h3><div class='map' id='map-{_e(aoi)}'></div>"
                    f"<p class='muted'>Pick the date at the top right; events first detected by that date are "
                    f"outlined, click one for its card{scale}.</p>")
    return f'<p class="legend">{legend}</p>' + "".join(maps)


def _coverage(content: Content) -> str:
    alerts = defaultdict(int)
    for a in content.found:
        alerts[(a.aoi, a.first_detected)] += 1
    rows = "".join(
        f"<tr><td>{_e(r['aoi'])}</td><td>{r['scan_date'].isoformat()}</td><td class='num'>{r['seen_tiles']}</td>"
        f"<td class='num'>{_pct(r['judged_share'])}</td><td class='num'>{_pct(r['obscured_share'])}</td>"
        f"<td class='num'>{_pct(r['mask_unreadable_share'])}</td><td class='num'>{_pct(r['not_covered_share'])}</td>"
        f"<td class='num'>{alerts[(r['aoi'], r['scan_date'])]}</td></tr>" for r in content.coverage)
    return ("<p class='muted'>Share of each AOI's tiled area (every tile any scan of it saw) that a date's scenes "
            f"showed clearly enough to judge (cloud-free, and at least {content.min_clear_fraction:.0%} clear by "
            "the UDM2 where there is one), that they showed obscured, that could not be judged because the scene's "
            "cloud mask could not be read there, and that no scene covered. No alerts on a date with little judged "
            "area means little was seen, not that nothing happened.</p>"
            "<table id='coverage'><tr><th>AOI</th><th>date</th><th>tiles seen</th><th>judged</th><th>obscured</th>"
            f"<th>mask unreadable</th><th>not covered</th><th>new alerts</th></tr>{rows}</table>")


def _picture(path: str | None, caption: str, scene: str, drawn: bool = True) -> str:
    if path is None:
        why = (f"its scenes (<code>{_e(scene)}</code> and those of its date) could not be read" if drawn else
               "pictures are drawn for the largest events only (report --max_pictures)")
        return f"<figure><figcaption>{_e(caption)}</figcaption><p class='muted'>no image: {why}</p></figure>"
    return (f"<figure><figcaption>{_e(caption)}</figcaption><img src='{_e(path)}' alt='{_e(caption)}'>"
            f"</figure>")


def _events(content: Content) -> str:
    if not content.events:
        return "<p>No events.</p>"
    cards = []
    for e in _largest(content.events, MAX_EVENTS):
        labels = ", ".join(f"{n} ({k})" for n, k in e.labels_gained)
        zones = "; ".join(f"{n}: {ha:.2f} ha" + ("" if e.cleared_ha is None else f" ({cleared:.2f} ha cleared)")
                          for n, ha, cleared in e.zones) or "none"
        level = f"<span class='{'high' if e.confidence != 'low' else ''}'>{_e(e.confidence)}</span>"
        area = (f"<strong>{e.area_ha:.1f} ha</strong> of alert tiles" if e.cleared_ha is None else
                f"<strong>{e.cleared_ha:.1f} ha cleared</strong> in {e.area_ha:.1f} ha of alert tiles")
        cards.append(
            f"<details class='event' id='event-{_e(e.event_id)}'><summary>{area} in "
            f"{_e(e.aoi)} at {_e(e.zones[0][0]) + ', ' if e.zones else ''}lon, lat {e.lon:.4f}, {e.lat:.4f}, "
            f"first detected {e.first_detected.isoformat()}: {_e(labels)}; confidence {level}, "
            f"{_e(e.status)}</summary><p>{e.tiles} tiles, detected {e.first_detected.isoformat()} to "
            f"{e.last_detected.isoformat()}, at lon, lat {e.lon:.5f}, {e.lat:.5f}. Zones: {_e(zones)}. Event "
            f"<code>{_e(e.event_id)}</code>; alerts {_e(', '.join(e.alert_ids))}.</p><div class='pair'>"
            + _picture(e.before_image, f"before: {e.before_date.isoformat()}", e.before_scene,
                       e.event_id in content.pictured)
            + _picture(e.after_image, f"after: {e.first_detected.isoformat()}", e.detected_scene,
                       e.event_id in content.pictured)
            + "</div></details>")
    more = len(content.events) - len(cards)
    note = f"<p class='muted'>{more} smaller events are in events.parquet.</p>" if more > 0 else ""
    cleared = ("" if content.clearings is None else
               f" Cleared: the pixels whose vegetation index dropped between the two pictures' dates (clear on both), "
               f"{sum(c.area_ha for c in content.clearings):.1f} ha in {len(content.clearings)} polygons "
               f"against {sum(e.area_ha for e in content.events):.1f} ha of alert tiles; clearings.geojson has them.")
    return ("<p class='muted'>Alert tiles that touch and were first detected close in time, largest first. "
            "Pictures: true colour, each stretched from its 2nd to 98th percentile; the event outlined in "
            f"yellow.{cleared}</p>" + "".join(cards) + note)


def _zones(content: Content) -> str:
    if content.zones is None:
        return ""
    delineated = content.clearings is not None
    rows = "".join(f"<tr><td>{_e(r['zone'])}</td><td>{r['first_detected'].isoformat()}</td>"
                   f"<td class='num'>{r['events']}</td><td class='num'>{r['area_ha']:.2f}</td>"
                   + (f"<td class='num'>{r['cleared_ha']:.2f}</td>" if delineated else "") + "</tr>"
                   for r in content.zones)
    cleared = "<th>cleared ha</th>" if delineated else ""
    return ("<h2>Zones</h2><p class='muted'>Event area inside each zone, by first-detection date: hectares of alert "
            "tiles" + (", and of the clearings delineated in them" if delineated else "") + ".</p>"
            f"<table id='zones'><tr><th>zone</th><th>first detected</th><th>events</th><th>tile ha</th>{cleared}</tr>"
            f"{rows}</table>" if rows else "<h2>Zones</h2><p>No event touches a zone.</p>")


def _areas(trends: Sequence[dict]) -> str:
    by_aoi: dict[str, list[dict]] = defaultdict(list)
    for t in trends:
        by_aoi[t["aoi"]].append(t)
    out = []
    for aoi, rows in sorted(by_aoi.items()):
        dates = sorted({r["scan_date"] for r in rows})
        cell = {(r["label"], r["scan_date"]): r for r in rows}
        head = "".join(
            f"<th>{d.isoformat()}<br><span class='muted'>km² (share of cloud-free area)</span></th>" for d in dates
        )
        body = []
        for name in LAND_LABELS:
            if not any(cell[(name, d)]["area_km2"] for d in dates):
                continue
            cells = []
            for d in dates:
                r = cell[(name, d)]
                share = r["share"]
                bar = f'<i class="bar" style="width:{min(share, 1) * 80:.0f}px"></i>' if share else ""
                cells.append(f'<td class="num">{r["area_km2"]:.2f} ({_pct(share)}){bar}</td>')
            body.append(f"<tr><td>{_e(name)}</td>{''.join(cells)}</tr>")
        seen = "".join(f'<td class="num">{cell[(LAND_LABELS[0], d)]["cloud_free_km2"]:.2f}</td>' for d in dates)
        body.append(f"<tr><th>cloud-free area seen</th>{seen}</tr>")
        out.append(f"<h3>{_e(aoi)}</h3><table><tr><th>label</th>{head}</tr>{''.join(body)}</table>")
    return "".join(out)


def _alerts(content: Content) -> str:
    if not content.found:
        return "<p>No alerts: no tile went from intact forest to a disturbance label between judged observations.</p>"
    shown = content.found[:MAX_ALERTS]
    rows = "".join(
        f"<tr><td>{_e(a.aoi)}</td><td><code>{_e(a.tile_id)}</code></td><td>{a.before_date.isoformat()}</td>"
        f"<td>{a.first_detected.isoformat()}</td><td>{_e(', '.join(a.labels_gained))}</td>"
        f'<td class="num">{a.probability:.2f}</td><td>{_e(a.confidence)}</td><td>{_e(a.status)}</td>'
        f'<td class="num">{a.lon:.5f}, {a.lat:.5f}</td><td class="num">{a.area_m2 / 1e4:.1f}</td></tr>'
        for a in shown)
    more = len(content.found) - len(shown)
    note = f"<p class='muted'>{more} more alerts are in alerts.parquet.</p>" if more > 0 else ""
    return ("<table id='alerts'><tr><th>AOI</th><th>tile</th><th>last intact</th><th>first detected</th>"
            "<th>labels gained</th><th>probability</th><th>confidence</th><th>status</th><th>lon, lat</th>"
            f"<th>tile ha</th></tr>{rows}</table>{note}")


def _score(scored: Mapping | None) -> str:
    if not scored:
        return ""
    tags = ", ".join(f"{tag} {v['found']}/{v['places']}" for tag, v in scored["per_tag"].items())
    return (f"<h2>Against known change places</h2><p>{scored['alerts']} alerts, {scored['true_alerts']} touching "
            f"a known place: precision <strong>{scored['precision']:.2f}</strong>. {scored['places']} places, "
            f"recall <strong>{scored['recall']:.2f}</strong>; among the {scored['visible_places']} places a judged "
            f"tile saw on the last date: {scored['recall_visible']:.2f}. Found per kind: {_e(tags)}.</p>"
            + _clearing_score(scored.get("clearings")))


def _clearing_score(scored: Mapping | None) -> str:
    if not scored:
        return ""
    ratio = "n/a" if scored["area_ratio"] is None else f"{scored['area_ratio']:.2f}"
    recall = "n/a" if scored["recall_iou50"] is None else f"{scored['recall_iou50']:.2f}"
    iou = "n/a" if scored["mean_iou"] is None else f"{scored['mean_iou']:.2f}"
    return (f"<p>Clearings: <strong>{scored['cleared_ha']:.1f} ha</strong> delineated against "
            f"{scored['planted_ha']:.1f} ha of known change (ratio {ratio}); of the {scored['planted']} known "
            f"places of at least the minimum size, found with an intersection over union of 0.5 or more: "
            f"<strong>{recall}</strong>, mean IoU {iou}; {scored['false_ha']:.1f} ha delineated outside every known "
            "place.</p>")


def _model_card(meta: BundleMeta | None, figures: Mapping[str, bytes]) -> str:
    if not meta:
        return "<h2>Model</h2><p class='muted'>No bundle given or named in the scan manifests.</p>"
    m = meta.metrics
    per_label = m.get("per_label", {})
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{meta.thresholds[name]:.2f}</td>"
        + "".join(f"<td class='num'>{per_label[name][k]:.3f}</td>" if per_label.get(name, {}).get("support")
                  else "<td class='num'>n/a</td>"
                  for k in ("precision", "recall", "f2"))
        + (f"<td class='num'>{per_label[name]['support']}</td>" if name in per_label else "<td></td>") + "</tr>"
        for name in meta.labels)
    f2 = " · ".join(f"{label} <strong>{m[key]:.3f}</strong>" for key, label in
                    (("searched", "searched thresholds"), ("at_0.5", "at 0.5"), ("at_0.2", "at 0.2")) if key in m)
    images = "".join(f'<img alt="{_e(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
                     for name, data in figures.items())
    return (f"<h2>Model</h2><p><code>{_e(meta.version)}</code>: {_e(meta.arch)}, input "
            f"{meta.input_size} px from {meta.chip_size}-px chips, bands {_e(', '.join(meta.bands))}, "
            f"trained {_e(meta.created_at)} on {m.get('training_chips', '?')} chips; validation "
            f"({m.get('validation_chips', '?')} chips) mean F2: {f2}.</p>"
            "<table><tr><th>label</th><th>threshold</th><th>precision</th><th>recall</th><th>F2</th>"
            f"<th>support</th></tr>{rows}</table><div class='figures'>{images}</div>")


def render(content: Content, assets: Mapping[str, str]) -> str:
    """The page; ``assets`` is :func:`leaflet`'s script and style sheet."""
    aois = sorted(content.maps)
    data = _map_data(content).replace("</", "<\\/")
    levels = ", ".join(f"{sum(1 for a in content.found if a.confidence == level and a.status == 'active')} {level}"
                       for level in ("highest", "high", "low"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>planet-tiles: {_e(", ".join(aois))}</title>
<style>{assets["leaflet.css"]}</style><style>{STYLE}</style></head><body>
<h1>Forest change report: {_e(", ".join(aois))}</h1>
<p>Scan dates {_e(", ".join(d.isoformat() for d in content.dates))}, from <code>{_e(content.scans)}</code>.
Alerts: <strong id="alert-count">{len(content.found)}</strong> (active: {levels}; retracted:
{sum(1 for a in content.found if a.status == 'retracted')}), in <strong id="event-count">{len(content.events)}</strong>
events.</p>
<h2>Map</h2>{_maps(content)}
<h2>Coverage</h2>{_coverage(content)}
<h2>Events</h2>{_events(content)}
{_zones(content)}
<h2>Label areas</h2>{_areas(content.trends)}
<h2>Alerts</h2><p class="muted">A tile whose last judged observation showed intact primary forest and that now
shows a disturbance label; observations too cloudy to judge are skipped. Probability: 1 - prod(1 - p) over the
labels gained. Confidence: <em>low</em> after one observation, <em>high</em> when the next judged observation
confirms it, <em>highest</em> when confirmed with a probability of at least {content.highest_probability:.2f} on
both; <em>retracted</em> when a later judged observation shows intact forest again.</p>
{_alerts(content)}{_score(content.scored)}{_model_card(content.meta, content.figures)}
<p class="muted">Written by planet-tiles report on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>
<script>{assets["leaflet.js"]}</script>
<script type="application/json" id="map-data">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""
