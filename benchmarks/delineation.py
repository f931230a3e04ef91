"""Clearings against the planted change, per threshold rule, and what delineating costs beside scanning.

    python benchmarks/delineation.py [--demo DEMO_OUTPUT] [--work DIR]

On a demo's output (``planet-tiles demo``; run here into ``--work`` when ``--demo`` is not given), side by
side in one run:

- for each threshold rule of :mod:`pipelines.analysis.clearings` (``otsu+floor``, the one used; ``otsu``
  alone; the ``floor`` alone): the area delineated against the planted area, the share of planted
  clearings of 1 ha or more found with an intersection over union of 0.5 or more, the mean IoU, and the
  hectares delineated outside every planted clearing. Twice: over the planted places that touch an event
  (what delineation had a chance at) and over all of them (the tile classifier's misses included);
- the cost: seconds per event and per km2 of event frames delineated in one process, against the scan's
  seconds per km2 (one date's scenes scanned again with the demo's bundle, in one process too).

The issue's targets, in events: area within 15 %, mean IoU at least 0.6, false area below 10 % of planted.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import shapely

from pipelines import demo, scan
from pipelines.analysis import clearings, event_images, events, queries, rules
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
    per_km2 = timings[clearings.OTSU_FLOOR] / frames_km2
    print(f"scan: {scan_seconds:.1f} s for {result['inferred']} tiles ({scanned_km2:.0f} km2, region "
          f"{_km2(region):.0f} km2): {scan_seconds / scanned_km2:.3f} s/km2; delineation: {per_km2:.3f} s per km2 of "
          f"event frame ({per_km2 / (scan_seconds / scanned_km2):.2f}x the scan's), "
          f"{timings[clearings.OTSU_FLOOR] / max(len(works), 1):.2f} s per event")


def _frame_km2(work: clearings.Work) -> float:
    outlines = [shapely.from_wkb(g) for _, g in work.alert_tiles]
    crs = "EPSG:32721"  # the demo's scenes' UTM zone
    where = clearings.frame(outlines, crs, 3.0)
    return (where.size * 3.0 / 1000) ** 2


def _km2(region: shapely.Geometry) -> float:
    return events.geodesic_ha(region) / 100


if __name__ == "__main__":
    main()
