"""``report.html``: one self-contained page (inline SVG maps, inline PNG figures, no scripts, no network).

Sections: a map per AOI and scan date with tiles coloured by what they show and alerts outlined; label
areas per date; the alert list; the model card from the bundle. Elements the tests look at carry ids:
``alert-count`` (the number of alerts) and ``map-<aoi>-<date>`` (each map's SVG).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import shapely
from shapely.geometry import shape

from pipelines.analysis.rules import Alert, Observation
from planet_model.labels import LAND_LABELS

# What a tile shows, checked in this order; the first that applies colours it.
CLASSES: tuple[tuple[str, str, str], ...] = (
    ("cloudy", "#bdbdbd", "cloudy"),
    ("disturbed", "#e07b39", "forest disturbed: agriculture, roads, habitation, bare ground, burns, mines ..."),
    ("water", "#3f7fd0", "water"),
    ("primary", "#2e7d32", "intact primary forest"),
    ("other", "#d7ccc8", "other (haze, partly cloudy with nothing else)"),
)
MAP_WIDTH = 440
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #212121; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 8px; white-space: nowrap; border-bottom: 1px solid #eee; }
th { text-align: left; background: #fafafa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.maps { display: flex; flex-wrap: wrap; gap: 16px; } figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; } svg.map { border: 1px solid #ccc; background: #fff; }
.legend span { display: inline-block; margin-right: 14px; } .swatch { display: inline-block; width: 12px;
height: 12px; margin-right: 4px; vertical-align: -1px; border: 1px solid #999; }
.bar { display: inline-block; height: 9px; background: #8d6e63; vertical-align: 0; margin-left: 6px; }
.figures img { max-width: 100%; } .muted { color: #757575; }
"""


def tile_class(o: Observation) -> str:
    if not o.cloud_free:
        return "cloudy"
    if o.disturbance:
        return "disturbed"
    return next((name for name in ("water", "primary") if name in o.labels), "other")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class Projection:
    """Longitude/latitude -> SVG pixels: equirectangular, scaled by cos(latitude) at the map's centre."""

    def __init__(self, bounds: tuple[float, float, float, float], width: int = MAP_WIDTH) -> None:
        west, south, east, north = bounds
        self.kx = math.cos(math.radians((south + north) / 2))
        self.west, self.north = west, north
        self.scale = width / max((east - west) * self.kx, 1e-9)
        self.width, self.height = width, max(1, round((north - south) * self.scale))

    def path(self, geometry: shapely.Geometry) -> str:
        parts = []
        for polygon in getattr(geometry, "geoms", [geometry]):
            for ring in [polygon.exterior, *polygon.interiors]:
                points = [f"{(x - self.west) * self.kx * self.scale:.1f},{(self.north - y) * self.scale:.1f}"
                          for x, y in ring.coords]
                parts.append("M" + " L".join(points) + " Z")
        return " ".join(parts)


def svg_map(aoi: str, date: dt.date, obs: Sequence[Observation], found: Sequence[Alert],
            places: Sequence[shapely.Geometry], projection: Projection) -> str:
    colours = {name: colour for name, colour, _ in CLASSES}
    shapes = [f'<path d="{projection.path(shapely.from_wkb(o.geometry))}" fill="{colours[tile_class(o)]}" '
              f'stroke="#ffffff" stroke-width="0.4"><title>{_e(o.tile_id)}: {_e(" ".join(o.labels))}</title></path>'
              for o in obs]
    shapes += [f'<path d="{projection.path(p)}" fill="none" stroke="#000" stroke-width="1.2" '
               f'stroke-dasharray="3,2"><title>known change place</title></path>' for p in places]
    shapes += [f'<path d="{projection.path(shapely.from_wkb(a.geometry))}" fill="none" stroke="#d50000" '
               f'stroke-width="2.2" class="alert"><title>alert {_e(a.tile_id)}: {_e(", ".join(a.labels_gained))} '
               f'({a.confidence:.2f})</title></path>' for a in found]
    return (f'<svg class="map" id="map-{_e(aoi)}-{date.isoformat()}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{projection.width}" height="{projection.height}" '
            f'viewBox="0 0 {projection.width} {projection.height}">{"".join(shapes)}</svg>')


def _maps(obs: Sequence[Observation], found: Sequence[Alert], places: Sequence[dict] | None) -> str:
    outlines = [shape(p["geometry"]) for p in places or []]
    by_aoi: dict[str, list[Observation]] = defaultdict(list)
    for o in obs:
        by_aoi[o.aoi].append(o)
    sections = []
    for aoi, seen in sorted(by_aoi.items()):
        bounds = shapely.union_all([shapely.from_wkb(o.geometry) for o in seen]).bounds
        projection = Projection(bounds)
        dates = sorted({o.scan_date for o in seen})
        inside = [p for p in outlines if p.intersects(shapely.box(*bounds))]
        figures = []
        for date in dates:
            alerts_here = [a for a in found if a.aoi == aoi and a.after_date == date]
            today = [o for o in seen if o.scan_date == date]
            figures.append(f"<figure><figcaption>{_e(aoi)}, {date.isoformat()}: {len(today)} tiles, "
                           f"{len(alerts_here)} alerts</figcaption>"
                           f"{svg_map(aoi, date, today, alerts_here, inside if date == dates[-1] else [], projection)}"
                           "</figure>")
        sections.append(f'<div class="maps">{"".join(figures)}</div>')
    legend = "".join(f'<span><i class="swatch" style="background:{colour}"></i>{_e(text)}</span>'
                     for _, colour, text in CLASSES)
    legend += '<span><i class="swatch" style="border:2px solid #d50000"></i>alert</span>'
    if places:
        legend += '<span><i class="swatch" style="border:1px dashed #000"></i>known change place</span>'
    return f'<p class="legend">{legend}</p>' + "".join(sections)


def _areas(trends: Sequence[dict]) -> str:
    by_aoi: dict[str, list[dict]] = defaultdict(list)
    for t in trends:
        by_aoi[t["aoi"]].append(t)
    out = []
    for aoi, rows in sorted(by_aoi.items()):
        dates = sorted({r["scan_date"] for r in rows})
        cell = {(r["label"], r["scan_date"]): r for r in rows}
        head = "".join(f"<th>{d.isoformat()}<br><span class='muted'>km² (share of cloud-free area)</span></th>" for d in dates)
        body = []
        for name in LAND_LABELS:
            if not any(cell[(name, d)]["area_km2"] for d in dates):
                continue
            cells = []
            for d in dates:
                r = cell[(name, d)]
                share = r["share"]
                bar = f'<i class="bar" style="width:{min(share, 1) * 80:.0f}px"></i>' if share else ""
                text = f"{share:.1%}" if share is not None else "n/a"
                cells.append(f'<td class="num">{r["area_km2"]:.2f} ({text}){bar}</td>')
            body.append(f"<tr><td>{_e(name)}</td>{''.join(cells)}</tr>")
        seen = "".join(f'<td class="num">{cell[(LAND_LABELS[0], d)]["cloud_free_km2"]:.2f}</td>' for d in dates)
        body.append(f"<tr><th>cloud-free area seen</th>{seen}</tr>")
        out.append(f"<h3>{_e(aoi)}</h3><table><tr><th>label</th>{head}</tr>{''.join(body)}</table>")
    return "".join(out)


def _alerts(found: Sequence[Alert]) -> str:
    if not found:
        return "<p>No alerts: no tile went from intact forest to a disturbance label between cloud-free observations.</p>"
    rows = "".join(
        f"<tr><td>{_e(a.aoi)}</td><td><code>{_e(a.tile_id)}</code></td><td>{a.before_date.isoformat()}</td>"
        f"<td>{a.after_date.isoformat()}</td><td>{_e(', '.join(a.labels_gained))}</td>"
        f'<td class="num">{a.confidence:.2f}</td><td class="num">{a.lon:.5f}, {a.lat:.5f}</td>'
        f'<td class="num">{a.area_m2 / 1e4:.1f}</td></tr>' for a in found)
    return ("<table><tr><th>AOI</th><th>tile</th><th>last intact</th><th>changed by</th><th>labels gained</th>"
            "<th>confidence</th><th>lon, lat</th><th>tile ha</th></tr>" + rows + "</table>")


def _score(scored: Mapping | None) -> str:
    if not scored:
        return ""
    tags = ", ".join(f"{tag} {v['found']}/{v['places']}" for tag, v in scored["per_tag"].items())
    return (f"<h2>Against known change places</h2><p>{scored['alerts']} alerts, {scored['true_alerts']} touching "
            f"a known place: precision <strong>{scored['precision']:.2f}</strong>. {scored['places']} places, "
            f"recall <strong>{scored['recall']:.2f}</strong>; among the {scored['visible_places']} places a cloud-free "
            f"tile saw on the last date: {scored['recall_visible']:.2f}. Found per kind: {_e(tags)}.</p>")


def _model_card(meta: Mapping | None, figures: Mapping[str, bytes]) -> str:
    if not meta:
        return "<h2>Model</h2><p class='muted'>No bundle given or named in the scan manifests.</p>"
    m = meta.get("metrics", {})
    per_label = m.get("per_label", {})
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{meta['thresholds'][name]:.2f}</td>"
        + "".join(f"<td class='num'>{per_label[name][k]:.3f}</td>" if name in per_label else "<td></td>"
                  for k in ("precision", "recall", "f2"))
        + (f"<td class='num'>{per_label[name]['support']}</td>" if name in per_label else "<td></td>") + "</tr>"
        for name in meta["labels"])
    f2 = " · ".join(f"{label} <strong>{m[key]:.3f}</strong>" for key, label in
                    (("searched", "searched thresholds"), ("at_0.5", "at 0.5"), ("at_0.2", "at 0.2")) if key in m)
    images = "".join(f'<img alt="{_e(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
                     for name, data in figures.items())
    return (f"<h2>Model</h2><p><code>{_e(meta['version'])}</code>: {_e(meta['arch'])}, input "
            f"{meta['input_size']} px from {meta['chip_size']}-px chips, bands {_e(', '.join(meta['bands']))}, "
            f"trained {_e(meta['created_at'])} on {m.get('training_chips', '?')} chips; validation "
            f"({m.get('validation_chips', '?')} chips) mean F2: {f2}.</p>"
            "<table><tr><th>label</th><th>threshold</th><th>precision</th><th>recall</th><th>F2</th>"
            f"<th>support</th></tr>{rows}</table><div class='figures'>{images}</div>")


def render(obs: Sequence[Observation], found: Sequence[Alert], trends: Sequence[dict], meta: Mapping | None,
           figures: Mapping[str, bytes], places: Sequence[dict] | None, scored: Mapping | None, scans: str) -> str:
    dates = sorted({o.scan_date.isoformat() for o in obs})
    aois = sorted({o.aoi for o in obs})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>planet-tiles: {_e(", ".join(aois))}</title>
<style>{STYLE}</style></head><body>
<h1>Forest change report: {_e(", ".join(aois))}</h1>
<p>{len({(o.aoi, o.tile_id) for o in obs})} tiles, scan dates {_e(", ".join(dates))}, from <code>{_e(scans)}</code>.
Alerts: <strong id="alert-count">{len(found)}</strong>.</p>
<h2>Map</h2>{_maps(obs, found, places)}
<h2>Label areas</h2>{_areas(trends)}
<h2>Alerts</h2><p class="muted">A tile whose last cloud-free observation showed intact primary forest and that now
shows a disturbance label. Cloudy observations are skipped. Confidence: 1 - prod(1 - p) over the labels gained.</p>
{_alerts(found)}{_score(scored)}{_model_card(meta, figures)}
<p class="muted">Written by planet-tiles report on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>
</body></html>
"""
