"""Clearings against the planted change, per threshold rule, and what delineating costs beside scanning.

    python benchmarks/delineation.py [--demo DEMO_OUTPUT] [--work DIR]

On a demo's output (``planet-tiles demo``; run here into ``--work`` when ``--demo`` is not given), side by
side in one run:

- for each threshold rule of :mod:`pipelines.analysis.clearings` (``floor``, the calibrated threshold,
  the one used; Otsu's within the frame over the floor, ``otsu+floor``; Otsu's alone): the area
  delineated against the planted area, the share of planted clearings of 1 ha or more found with an
  intersection over union of 0.5 or more, the mean IoU, and the hectares delineated outside every planted
  clearing. Twice: over the planted places that touch an event
  (what delineation had a chance at) and over all of them (the tile classifier's misses included);
- the same measures on a **hard pair** made here (:func:`hard_pair`): 9 x 9 km of forest at 3 m with
  per-band sensor noise, a river and old fields that do not change, and on the second date 30 clearings
  of 0.5 to 100 ha (log-uniform) with irregular outlines of pasture, bare soil and burn, the largest half
  under a cloud the mask flags, a patch of selective-logging-like speckle, and non-changes that must not
  be delineated: the whole second date 15 % brighter, under haze of 25 % give or take 8 across the scene
  (too thin for a mask to flag), with its near-infrared 8 % lower (a seasonal shift in one band). Each
  clearing is delineated as an event would be: in a frame of 3 x 3 tiles of 256 px centred on it, keeping
  the polygons that touch its middle tile; and frames centred on unchanged forest, river and speckle count
  what is delineated where nothing was cleared. Beside the rules, the method without its normalisation
  (the naive method this set is made to fail), the calibration sweep of the threshold, and what four
  clearings grew by on a third date, delineated as an event's second comparison is: from the second date,
  and from the first (the growth's tiles under cloud on the second) less what the first comparison found;
- the cost: seconds per event and per km2 of event frames delineated in one process, against the scan's
  seconds per km2 (one date's scenes scanned again with the demo's bundle, in one process too).

The issue's targets, in events: area within 15 %, mean IoU at least 0.6, false area below 10 % of planted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize

from pipelines import demo, scan
from pipelines.analysis import clearings, event_images, events, queries, rules
from pipelines.geo.grid import WGS84, reproject
from pipelines.sources.masks import AUTO
from pipelines.sources.reader import ReadOptions
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from planet_core import logs


def demo_output(args: argparse.Namespace) -> Path:
    if args.demo:
        return Path(args.demo)
    out = Path(args.work or tempfile.mkdtemp(prefix="delineation-")) / "demo"
    if not (out / "scans").exists():
        demo.run(["--output", str(out)])
    return out


def main() -> None:
    logs.configure()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", help="a demo's output folder (default: run the demo into --work)")
    p.add_argument("--work", help="where to run the demo and the timed scan (default: a temporary folder)")
    args = p.parse_args()
    out = demo_output(args)
    warehouse = Warehouse(str(out / "scans"))
    con = queries.connect(scans.snapshot(warehouse), materialize=True)
    dates = queries.scan_dates(con)
    found = queries.alerts(con, dates, rules.MIN_CLEAR_FRACTION, rules.HIGHEST_PROBABILITY)
    grouped = events.events(found)
    works = clearings.plan(con, grouped, found, event_images.scene_items(con))
    places = json.loads((out / "truth" / "planted.geojson").read_text())["features"]
    read = ReadOptions(cloud_mask=AUTO)
    frames_km2 = sum(_frame_km2(w) for w in works)
    print(f"{len(found)} alerts in {len(grouped)} events; {len(places)} planted places; event frames "
          f"{frames_km2:.1f} km2")
    print(f"{'rule':<11} {'where':<9} {'planted ha':>10} {'found ha':>9} {'ratio':>6} {'recall@0.5':>10} "
          f"{'mean IoU':>8} {'false ha':>8} {'s/event':>8}")
    timings = {}
    for rule in clearings.RULES:
        start = time.perf_counter()
        cleared = clearings.for_events(works, read, clearings.MIN_CLEARING_HA, rule)
        timings[rule] = time.perf_counter() - start
        scored = clearings.score(cleared, places, grouped)
        for where, m in (("in events", scored["in_events"]), ("all", scored)):
            print(f"{rule:<11} {where:<9} {m['planted_ha']:>10.1f} {m['cleared_ha']:>9.1f} {m['area_ratio']:>6.2f} "
                  f"{m['recall_iou50']:>10.2f} {m['mean_iou']:>8.2f} {m['false_ha']:>8.1f} "
                  f"{timings[rule] / max(len(works), 1):>8.2f}")

    pair = hard_pair()
    sizes = [g.area * PIXEL**2 / 1e4 for g in pair.planted]
    print(f"\nhard pair: {len(pair.planted)} planted clearings of {min(sizes):.1f} to {max(sizes):.0f} ha, "
          f"{len(pair.quiet)} quiet frames")
    print(f"{'method':<22} {'planted ha':>10} {'found ha':>9} {'ratio':>6} {'recall@0.5':>10} {'mean IoU':>8} "
          f"{'false ha':>8}")
    for name, rule, normalised in [*((r, r, True) for r in clearings.RULES),
                                   ("no normalisation", clearings.FLOOR, False)]:
        m = hard_measures(pair, rule, normalised)
        print(f"{name:<22} {m['planted_ha']:>10.1f} {m['cleared_ha']:>9.1f} {m['area_ratio']:>6.2f} "
              f"{m['recall_iou50']:>10.2f} {m['mean_iou']:>8.2f} {m['false_ha']:>8.1f}")
    for since in (2, 1):
        m = hard_measures(pair, clearings.FLOOR, growth=since)
        print(f"{f'growth, date {since} to 3':<22} {m['planted_ha']:>10.1f} {m['cleared_ha']:>9.1f} "
              f"{m['area_ratio']:>6.2f} {m['recall_iou50']:>10.2f} {m['mean_iou']:>8.2f} {m['false_ha']:>8.1f}")
    if args.work:
        path = Path(args.work) / "hard-truth.geojson"
        path.write_text(json.dumps(truth_geojson(pair)))
        print(f"the hard pair's truth: {path}")
    calibrated = clearings.FLOORS[clearings.NDVI]
    try:
        for value in (0.08, 0.10, 0.12, 0.15, 0.18, 0.22):
            clearings.FLOORS[clearings.NDVI] = value
            m = hard_measures(pair, clearings.FLOOR)
            print(f"{f'NDVI drop > {value:.2f}':<22} {m['planted_ha']:>10.1f} {m['cleared_ha']:>9.1f} "
                  f"{m['area_ratio']:>6.2f} {m['recall_iou50']:>10.2f} {m['mean_iou']:>8.2f} {m['false_ha']:>8.1f}")
    finally:
        clearings.FLOORS[clearings.NDVI] = calibrated

    scenes = sorted(str(s) for s in (out / "scenes" / "watch-2").glob("*.tif") if not s.name.endswith("_udm2.tif"))
    region = shapely.geometry.shape(json.loads((out / "truth" / "watched.geojson").read_text())["features"][0]
                                    ["geometry"])
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        result = scan.run(["--aoi", str(out / "truth" / "watched.geojson"), "--scenes", *scenes, "--bundle",
                           str(out / "bundle"), "--output", os.path.join(scratch, "scans"), "--scan_date",
                           "2026-07-13"])
        scan_seconds = time.perf_counter() - start
    scanned_km2 = result["inferred"] * (256 * 3.0 / 1000) ** 2
    per_km2 = timings[clearings.FLOOR] / frames_km2
    print(f"scan: {scan_seconds:.1f} s for {result['inferred']} tiles ({scanned_km2:.0f} km2, region "
          f"{_km2(region):.0f} km2): {scan_seconds / scanned_km2:.3f} s/km2; delineation: {per_km2:.3f} s per km2 of "
          f"event frame ({per_km2 / (scan_seconds / scanned_km2):.2f}x the scan's), "
          f"{timings[clearings.FLOOR] / max(len(works), 1):.2f} s per event")


CRS, ORIGIN, PIXEL = "EPSG:32721", (600_000.0, 8_899_998.0), 3.0
FOREST = np.array([330, 600, 350, 3000], np.float32)  # red, green, blue, nir: surface reflectance x 10,000
CLEARED = {"pasture": np.array([950, 1050, 700, 2500], np.float32), "soil": np.array([2050, 1650, 1350, 2600],
                                                                                      np.float32),
           "burn": np.array([300, 280, 260, 800], np.float32)}
HAZE = np.array([2050, 1950, 1900, 2500], np.float32)
QUIET = 800  # pixels of the hard pair's west where nothing is cleared


@dataclass
class HardPair:
    before: clearings.Observation
    after: clearings.Observation
    planted: list[shapely.Geometry]  # in pixel coordinates (column, row)
    quiet: list[tuple[float, float]]  # centres of frames where nothing was cleared
    third: clearings.Observation  # a third date, on which some clearings grew
    grown: list[tuple[shapely.Geometry, shapely.Geometry]]  # (outline on the second date, on the third)


def _smooth(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth field of about unit spread: random values on a coarse grid, interpolated."""
    return cv2.resize(rng.standard_normal((cells, cells)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)


def _irregular(rng: np.random.Generator, cx: float, cy: float, area_px: float) -> shapely.Geometry:
    """A clearing's outline of about ``area_px`` pixels: a star polygon with ragged edges."""
    radius = math.sqrt(area_px / math.pi)
    angles = np.sort(rng.uniform(0, 2 * math.pi, 18))
    radii = radius * rng.uniform(0.6, 1.25, 18)
    shape = shapely.Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))
    shape = shapely.make_valid(shape).buffer(radius * 0.1)
    return shapely.affinity.scale(shape, math.sqrt(area_px / shape.area), math.sqrt(area_px / shape.area))


def hard_pair(seed: int = 11, size: int = 3072) -> HardPair:
    """See the module docstring: the hard synthetic pair, its planted clearings and its quiet places."""
    rng = np.random.default_rng(seed)
    texture = (1 + 0.12 * rng.standard_normal((size, size, 1))).astype(np.float32)

    def noisy(image: np.ndarray) -> np.ndarray:  # sensor noise, each band on its own
        return image * (1 + 0.04 * rng.standard_normal(image.shape).astype(np.float32))

    ground = np.broadcast_to(FOREST, (size, size, 4)) * texture
    # the west (x < QUIET) is left unchanged: frames there measure what is delineated where nothing was cleared
    river = shapely.LineString([(0, 300), (700, 420), (1400, 380), (size, 520)]).buffer(12)
    fields = [shapely.box(200, 1500, 420, 1700), shapely.box(1500, 1400, 1750, 1560)]
    old = rasterize([(g, 1) for g in [river, *fields]], out_shape=(size, size), transform=Affine.identity()) > 0
    water = rasterize([(river, 1)], out_shape=(size, size), transform=Affine.identity()) > 0
    ground = ground.copy()
    ground[old & ~water] = CLEARED["pasture"]
    ground[water] = np.array([560, 700, 520, 350], np.float32)
    before = noisy(ground)

    planted, taken = [], shapely.union_all([river.buffer(150), *(f.buffer(150) for f in fields)])
    areas_ha = np.exp(rng.uniform(math.log(0.5), math.log(100), 30))
    after = ground.copy()
    for area in sorted(areas_ha, reverse=True):
        for _ in range(200):
            cx, cy = rng.uniform(QUIET + 300, size - 300), rng.uniform(300, size - 300)
            shape = _irregular(rng, cx, cy, area * 1e4 / PIXEL**2)
            if not shape.intersects(taken):
                planted.append(shape)
                taken = taken.union(shape.buffer(120))
                kind = list(CLEARED)[len(planted) % 3]
                inside = rasterize([(shape, 1)], out_shape=(size, size), transform=Affine.identity()) > 0
                after[inside] = CLEARED[kind] * texture[inside]
                break
    speckle_at = (400.0, 2400.0)
    speckle = shapely.Point(speckle_at).buffer(120)
    patch = rasterize([(speckle, 1)], out_shape=(size, size), transform=Affine.identity()) > 0
    logged = patch & (rng.random((size, size)) < 0.03)
    after[logged] = CLEARED["soil"]
    # a third date: four clearings (not the clouded one) grow, each by a blob on its edge
    biggest = max(planted, key=lambda g: g.area)
    third, grown = after.copy(), []
    for shape in [g for g in planted if g is not biggest][:4]:
        edge = shape.exterior.interpolate(rng.uniform(0, shape.exterior.length))
        larger = shape.union(_irregular(rng, edge.x, edge.y, 0.6 * shape.area))
        ring = rasterize([(larger.difference(shape), 1)], out_shape=(size, size), transform=Affine.identity()) > 0
        third[ring] = CLEARED["pasture"] * texture[ring]
        grown.append((shape, larger))

    def weathered(land: np.ndarray) -> np.ndarray:
        """The non-changes: brighter, under thin haze that thickens and thins across the scene (25 % give
        or take 8: too thin for a mask to flag), and a seasonal NIR shift."""
        alpha = np.clip(0.25 + 0.08 * _smooth(rng, size, 10), 0.05, 0.45)[..., None]
        image = (land * 1.15) * (1 - alpha) + HAZE * alpha
        image[..., 3] *= 0.92
        return np.clip(noisy(image), 1, None)

    after, third = weathered(after), weathered(third)
    # a cloud over half of the largest clearing on the second date, flagged by the mask (and drawn)
    west, south, east, north = biggest.bounds
    cloud = shapely.box((west + east) / 2, south - 40, east + 40, north + 40)
    clouded = rasterize([(cloud, 1)], out_shape=(size, size), transform=Affine.identity()) > 0
    after[clouded] = np.array([4650, 4600, 4600, 4900], np.float32)
    quiet = [(400.0, 400.0), (400.0, 1600.0), speckle_at, (400.0, 1000.0)]  # river, old field, speckle, forest
    everywhere = np.ones((size, size), bool)
    return HardPair(clearings.Observation(np.clip(before, 1, None), everywhere),
                    clearings.Observation(after, ~clouded), planted, quiet,
                    clearings.Observation(third, everywhere), grown)


def truth_geojson(pair: HardPair) -> dict:
    """The hard pair's planted clearings (EPSG:4326) with the date each was cleared by (2, or 3 for growth)."""
    def lonlat(g: shapely.Geometry) -> dict:
        return shapely.geometry.mapping(_to_lonlat(g))

    features = [{"type": "Feature", "properties": {"date": 2, "area_ha": round(g.area * PIXEL**2 / 1e4, 3)},
                 "geometry": lonlat(g)} for g in pair.planted]
    features += [{"type": "Feature", "properties": {"date": 3, "grows": i,
                                                    "area_ha": round((b.area - a.area) * PIXEL**2 / 1e4, 3)},
                  "geometry": lonlat(b.difference(a))} for i, (a, b) in enumerate(pair.grown)]
    return {"type": "FeatureCollection", "features": features}


def _to_lonlat(g: shapely.Geometry) -> shapely.Geometry:
    return reproject(shapely.affinity.affine_transform(g, [PIXEL, 0, 0, -PIXEL, *ORIGIN]), CRS, WGS84)


def hard_measures(pair: HardPair, rule: str, normalised: bool = True, growth: int = 0) -> dict:
    """Delineate each planted clearing's frame (and the quiet frames) as an event would be; score. With
    ``growth``, in the frames of the clearings that grew, scored against what they grew by, as an event's
    second comparison: ``2``, the second date against the third; ``1``, the first date against the third
    (the growth's tiles under cloud on the second date) less what the first comparison (the first date
    against the second) found in the frame."""
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    bands = ("red", "green", "blue", "nir")
    size = pair.before.image.shape[0]
    first, second = {0: (pair.before, pair.after), 1: (pair.before, pair.third), 2: (pair.after, pair.third)}[growth]
    targets = [b.difference(a) for a, b in pair.grown] if growth else pair.planted
    centres = [(g.centroid.x, g.centroid.y) for g in targets] + ([] if growth else pair.quiet)
    found = []
    original = clearings.normalise
    if not normalised:
        clearings.normalise = lambda before, after, bands: after.image.astype(np.float32)
    try:
        for cx, cy in centres:
            col = int(min(max(cx - 384, 0), size - 768))
            row = int(min(max(cy - 384, 0), size - 768))
            window = (slice(row, row + 768), slice(col, col + 768))
            cut = [clearings.Observation(o.image[window], o.usable[window]) for o in (first, second)]
            grid = transform * Affine.translation(col, row)
            smallest = math.floor(1.0 / (PIXEL**2 / 1e4))
            changed = clearings.detect(*cut, bands, min_pixels=smallest, rule=rule).changed
            if growth == 1:
                seen = clearings.detect(*(clearings.Observation(o.image[window], o.usable[window])
                                          for o in (pair.before, pair.after)), bands, min_pixels=smallest, rule=rule)
                earlier = [outline for outline, _ in clearings.polygons(seen.changed, CRS, grid, 1.0)]
                changed = clearings.not_found_before(changed, earlier, CRS, grid)
            middle = _to_lonlat(shapely.box(cx - 128, cy - 128, cx + 128, cy + 128))
            for outline, _ in clearings.polygons(changed, CRS, grid, 1.0):
                if outline.intersects(middle):
                    found.append(outline)
    finally:
        clearings.normalise = original
    merged = list(getattr(u := shapely.union_all(found), "geoms", [u])) if found else []
    return clearings.measure(merged, [_to_lonlat(g) for g in targets], 1.0)


def _frame_km2(work: clearings.Work) -> float:
    """Square kilometres of an event's frames, one per comparison."""
    outlines = {alert_id: shapely.from_wkb(g) for alert_id, g in work.alert_tiles}
    crs = "EPSG:32721"  # the demo's scenes' UTM zone
    sides = [clearings.frame([outlines[i] for i in c.alert_ids], crs, 3.0).size for c in work.comparisons]
    return sum((side * 3.0 / 1000) ** 2 for side in sides)


def _km2(region: shapely.Geometry) -> float:
    return events.geodesic_ha(region) / 100


if __name__ == "__main__":
    main()
