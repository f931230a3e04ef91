"""Change detection and the report: scans in, alerts (Parquet, GeoJSON) and ``report.html`` out.

    planet-tiles report --scans scans/ --output report/ [--aoi NAME] [--bundle PATH] [--truth places.geojson]

Reads every scan under ``--scans`` (local or ``gs://``, Hive partitions ``scan_date=/aoi=``), applies
the rules of :mod:`pipelines.analysis.rules`, and writes ``alerts.parquet`` (GeoParquet), ``alerts.geojson``,
``summary.json`` and ``report.html`` (one self-contained file: map, label areas, alerts, model card).
The model card comes from ``--bundle``, by default the bundle named in the latest scan's manifest
(batch or streaming).
With ``--truth`` (GeoJSON of known change places), alerts are scored against it: precision (alerts
touching a place), recall (places touched by an alert) and recall among the places some cloud-free tile saw
on the last scan date.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

import shapely
from shapely.geometry import mapping, shape

from pipelines.analysis import layout, rules, schema
from pipelines.analysis.rules import Alert, Observation
from planet_model import storage
from planet_model.errors import UserError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles report", description=__doc__.split("\n\n")[0])
    p.add_argument("--scans", required=True, help="scan output prefix (what scan's --output was), local or gs://")
    p.add_argument("--output", required=True, help="folder for alerts and report.html, local or gs://")
    p.add_argument("--aoi", help="only this AOI (default: all under --scans)")
    p.add_argument("--bundle", help="model bundle for the model card (default: from the latest scan's manifest)")
    p.add_argument("--truth", help="GeoJSON of known change places: score the alerts against them")
    p.add_argument("--min_clear_fraction", type=float, default=rules.MIN_CLEAR_FRACTION,
                   help="observations whose UDM2 clear fraction is below this never confirm or clear an alert "
                        f"(default {rules.MIN_CLEAR_FRACTION}; tiles of scenes without a UDM2 are judged by "
                        "their cloudy label alone)")
    return p


def alerts_geojson(found: Sequence[Alert]) -> dict:
    features = []
    for a in found:
        properties = {"aoi": a.aoi, "tile_id": a.tile_id, "before_date": a.before_date.isoformat(),
                      "after_date": a.after_date.isoformat(), "before_scene": a.before_scene,
                      "after_scene": a.after_scene,
                      "after_acquired": a.after_acquired.isoformat() if a.after_acquired else None,
                      "labels_gained": list(a.labels_gained), "confidence": round(a.confidence, 6),
                      "area_m2": a.area_m2}
        features.append({"type": "Feature", "id": f"{a.tile_id}@{a.after_date}", "properties": properties,
                         "geometry": mapping(shapely.from_wkb(a.geometry))})
    return {"type": "FeatureCollection", "features": features}


def score(found: Sequence[Alert], obs: Sequence[Observation], places: Sequence[dict],
          min_clear_fraction: float = rules.MIN_CLEAR_FRACTION) -> dict:
    """Alerts against known change places (GeoJSON features). A place is *visible* when a tile judged on
    the last scan date (cloud-free, clear enough by its UDM2) touches it."""
    shapes = [shape(p["geometry"]) for p in places]
    tree = shapely.STRtree(shapes)
    outlines = [shapely.from_wkb(a.geometry) for a in found]
    hits = [set(tree.query(outline, predicate="intersects").tolist()) for outline in outlines]
    last = max((o.scan_date for o in obs), default=None)
    seen = shapely.STRtree([shapely.from_wkb(o.geometry) for o in obs
                            if o.scan_date == last and o.judged(min_clear_fraction)] or
                           [shapely.Point()])
    visible = [i for i, s in enumerate(shapes) if len(seen.query(s, predicate="intersects"))]
    found_places = set().union(*hits)
    return {
        "places": len(shapes),
        "alerts": len(found),
        "true_alerts": sum(1 for h in hits if h),
        "precision": sum(1 for h in hits if h) / len(found) if found else 0.0,
        "recall": len(found_places) / len(shapes) if shapes else 0.0,
        "visible_places": len(visible),
        "recall_visible": len(found_places & set(visible)) / len(visible) if visible else 0.0,
        "per_tag": {tag: {"places": sum(1 for p in places if p["properties"]["tag"] == tag),
                          "found": sum(1 for i in found_places if places[i]["properties"]["tag"] == tag)}
                    for tag in sorted({p["properties"]["tag"] for p in places})},
    }


def run(argv: Sequence[str] | None = None) -> dict:
    """Write the alerts and the report; return the summary (also written as ``summary.json``)."""
    from pipelines.analysis import report_page
    from planet_model import bundle as bundles

    args = build_parser().parse_args(argv)
    if not 0 <= args.min_clear_fraction <= 1:
        raise UserError(f"--min_clear_fraction {args.min_clear_fraction}: must be between 0 and 1")
    try:
        rows = layout.read_table(args.scans, args.aoi).to_pylist()
    except FileNotFoundError as error:
        raise UserError(f"--scans {args.scans}: {error}") from None
    obs = rules.observations(rows)
    found = rules.alerts(obs, min_clear_fraction=args.min_clear_fraction)
    trends = rules.label_trends(obs)
    bundle_path = args.bundle or layout.latest_bundle(args.scans, args.aoi)
    meta, figures = None, {}
    if bundle_path:
        meta = bundles.read_metadata(bundle_path)
        for name in ("training_curves.png", "f2_vs_threshold.png"):
            location = storage.join(bundle_path, name)
            if storage.exists(location):
                figures[name] = storage.read_bytes(location)
    places = json.loads(storage.read_text(args.truth))["features"] if args.truth else None
    scored = score(found, obs, places, args.min_clear_fraction) if places is not None else None

    files = {name: storage.join(args.output, name)
             for name in ("alerts.parquet", "alerts.geojson", "summary.json", "report.html")}
    columns = schema.ALERT_COLUMNS
    storage.write_bytes(files["alerts.parquet"], schema.parquet_bytes(
        [{c.name: getattr(a, c.name) for c in columns} for a in found], columns))
    storage.write_text(files["alerts.geojson"], json.dumps(alerts_geojson(found)))
    page = report_page.render(obs=obs, found=found, trends=trends, meta=meta, figures=figures, places=places,
                              scored=scored, scans=args.scans)
    storage.write_text(files["report.html"], page)
    summary = {
        "scans": args.scans, "aois": sorted({o.aoi for o in obs}),
        "scan_dates": sorted({o.scan_date.isoformat() for o in obs}), "rows": len(rows), "observations": len(obs),
        "tiles": len({(o.aoi, o.tile_id) for o in obs}), "alerts": len(found),
        "bundle": bundle_path, "model_version": meta["version"] if meta else None, "truth": scored,
        "files": {"alerts_parquet": files["alerts.parquet"], "alerts_geojson": files["alerts.geojson"],
                  "report": files["report.html"]},
    }
    storage.write_text(files["summary.json"], json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    summary = run(argv)
    print(json.dumps({k: summary[k] for k in ("scan_dates", "tiles", "alerts", "truth")}, default=str))
    print(f"report: {summary['files']['report']}")


if __name__ == "__main__":
    main()
