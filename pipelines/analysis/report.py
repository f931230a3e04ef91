"""Change detection and the report: scans in; alerts, events and ``report.html`` out.

    planet-tiles report --scans scans/ --output report/ [--aoi NAME] [--zones zones.geojson] [--truth places.geojson]

The analysis is the BigQuery SQL of ``infra/bigquery/`` run in DuckDB over the scans (local or ``gs://``,
Hive partitions ``scan_date=/aoi=``), the same queries an analyst runs in BigQuery: ``alerts`` (with
their confidence levels and status), ``label_trends``, ``coverage``, ``tile_states`` (the map), and
``zone_alerts`` over the events. Rows are never loaded into Python: the observations are materialized
once in DuckDB where a tile has several rows on one date (else each query reads the files), the map's
tiles stream out in Arrow batches into small rasters (:mod:`pipelines.analysis.map_layers`). Alerts group
into events (:mod:`pipelines.analysis.events`), each with before and after pictures
(:mod:`pipelines.analysis.event_images`).

Written to ``--output`` as one new version (``runs/<version>/``), which the folder's ``current.json`` (and,
on local disks, the link ``current``) switches to once every file is written, so that two reports, or
one killed midway, never leave files that disagree: ``alerts.parquet`` / ``alerts.geojson``,
``events.parquet`` / ``events.geojson`` (GeoParquet; BigQuery tables ``alerts`` and ``events``),
``events/*.png``, ``summary.json`` and ``report.html``: one page, viewed without network: an interactive
map (Leaflet, vendored into the page) with a layer per date and the events outlined, coverage, events
with their pictures, zones, label areas, alerts and the model card (from ``--bundle``, else the bundle
of the newest scan commit). Every query reads one snapshot of the scans table (``--as_of``: an earlier
one). With ``--truth`` (GeoJSON of known change places), alerts are scored against it: precision (alerts
touching a place), recall (places touched by an alert) and recall among the places some judged tile saw on
the last scan date.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa
import shapely
from shapely.geometry import mapping, shape

from pipelines import sources
from pipelines.analysis import clearings, event_images, events, map_layers, queries, report_page, rules
from pipelines.analysis.rules import Alert
from pipelines.geo import vectors
from pipelines.sources.masks import AUTO
from pipelines.store import clearings as stored_clearings
from pipelines.store import scans, schema
from planet_core import commands, logs, publishing, storage
from planet_core.errors import RunFailed, UserError
from planet_model import bundle as bundles

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("report", __doc__)
    queries.add_snapshot_arguments(p)
    p.add_argument("--output", required=True, help="the report folder, local or gs:// (each run writes a new "
                                                   "version and switches the folder to it; open current/report.html)")
    p.add_argument("--aoi", help="only this AOI (default: all under --scans)")
    p.add_argument("--bundle", help="model bundle for the model card (default: from the latest scan's manifest)")
    p.add_argument("--truth", help="known change places (any vector file GDAL reads, any CRS): score the alerts and "
                                   "clearings against them")
    queries.add_judging_arguments(p)
    events.add_arguments(p)
    p.add_argument("--zones", help="named polygons (protected areas, territories, properties; any vector file GDAL "
                                   "reads, any CRS): each event lists the zones it touches and its area inside each")
    p.add_argument("--zone_name_property", default=events.ZONE_NAME_PROPERTY,
                   help=f"the zones' property holding their name (default {events.ZONE_NAME_PROPERTY})")
    queries.add_memory_argument(p)
    p.add_argument("--no_images", action="store_true",
                   help="skip the events' before/after pictures (they read the scenes again)")
    p.add_argument("--max_pictures", type=int, default=event_images.MAX_PICTURES,
                   help="pictures for this many of the largest events (default "
                        f"{event_images.MAX_PICTURES}; each reads its scenes again)")
    p.add_argument("--imagery", action="store_true",
                   help="lay each scan date's scenes under the map's tiles (a true-colour mosaic at "
                        f"{event_images.IMAGERY_PIXELS} px a side; it reads the scenes again)")
    clearings.add_arguments(p)
    p.add_argument("--no_clearings", action="store_true",
                   help="skip delineating the events' clearings (it reads the scenes of the dates before and of "
                        "detection again); events then have no cleared_ha")
    sources.add_arguments(p, dates=False, product=False, cloud_mask=False)
    return p


def _geojson(items: Sequence, columns: Sequence[schema.Column], key: str) -> str:
    """A FeatureCollection of alerts, events or clearings as GeoJSON text: every column but the geometry as
    properties, dates and times in ISO 8601. Geometries are written by GEOS (``shapely.to_geojson``, every
    vertex at full precision), five times faster than building their coordinate lists in Python; properties
    column by column (:func:`_json_values`) into one format per feature (52,497 alerts: 0.52 against 0.69 s
    encoding a dict per alert)."""
    names = [c.name for c in columns if c.type != "GEOGRAPHY"]
    feature = ('{"type": "Feature", "id": %s, "properties": {'
               + ", ".join(f"{json.dumps(n).replace('%', '%%')}: %s" for n in names) + '}, "geometry": %s}')
    geometries = shapely.to_geojson(shapely.from_wkb([item.geometry for item in items])) if items else []
    values = zip(_json_values([getattr(item, key) for item in items]),
                 *(_json_values([getattr(item, n) for item in items]) for n in names), geometries)
    features = ",".join(feature % row for row in values)
    return f'{{"type": "FeatureCollection", "features": [{features}]}}'


def _json_values(values: Sequence) -> list[str]:
    """Each value as JSON text, exactly as :class:`json.JSONEncoder` writes it inside an object (dates and times
    as ISO 8601 strings): numbers by their ``repr`` (as the encoder does), and a text, date, time or tuple
    that repeats (an AOI, a scan date, a confidence level, the labels gained) encoded once; ``values`` are
    one column's, of one type (a tuple holding ``1`` is taken for one holding ``1.0``)."""
    encode = json.JSONEncoder(default=_iso).encode
    done: dict[object, str] = {}
    out = []
    for value in values:
        kind = type(value)
        if kind is float and math.isfinite(value) or kind is int:
            out.append(repr(value))
        elif value is None:
            out.append("null")
        elif kind is str or kind is dt.date or kind is dt.datetime or kind is tuple:
            text = done.get(value)
            if text is None:
                text = done[value] = encode(value)
            out.append(text)
        else:
            out.append(encode(value))
    return out


def _iso(value: object) -> str:
    """A date or a time as GeoJSON properties carry it (JSON has no type for them)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _records(items: Sequence, columns: Sequence[schema.Column]) -> list[dict]:
    """Rows for :func:`schema.parquet_bytes`: record lists as dicts of their fields."""
    rows = []
    for item in items:
        row = {}
        for c in columns:
            value = getattr(item, c.name)
            row[c.name] = [dict(zip((n for n, _ in c.fields), v)) for v in value] if c.fields else value
        rows.append(row)
    return rows


def score(found: Sequence[Alert], seen: Sequence[bytes], places: Sequence[dict]) -> dict:
    """Alerts against known change places (GeoJSON features). ``seen``: outlines (WKB) of the tiles judged
    on the last scan date; a place is *visible* when one of them touches it."""
    shapes = [shape(p["geometry"]) for p in places]
    tree = shapely.STRtree(shapes)
    outlines = [shapely.from_wkb(a.geometry) for a in found]
    hits = [set(tree.query(outline, predicate="intersects").tolist()) for outline in outlines]
    judged = shapely.STRtree([shapely.from_wkb(g) for g in seen] or [shapely.Point()])
    visible = [i for i, s in enumerate(shapes) if len(judged.query(s, predicate="intersects"))]
    found_places = set().union(*hits)
    return {
        "places": len(shapes),
        "alerts": len(found),
        "true_alerts": sum(1 for h in hits if h),
        "precision": sum(1 for h in hits if h) / len(found) if found else 0.0,
        "recall": len(found_places) / len(shapes) if shapes else 0.0,
        "visible_places": len(visible),
        "recall_visible": len(found_places & set(visible)) / len(visible) if visible else 0.0,
        "per_tag": {tag: {"places": sum(1 for p in places if _tag(p) == tag),
                          "found": sum(1 for i in found_places if _tag(places[i]) == tag)}
                    for tag in sorted({_tag(p) for p in places})},
    }


def _tag(place: dict) -> str:
    """A known change place's kind: its ``tag`` property (the synthetic truth's), else "place"."""
    return str((place.get("properties") or {}).get("tag", "place"))


def _check(args: argparse.Namespace) -> None:
    queries.check_judging_arguments(args)
    events.check_arguments(args)
    if not _reads_scenes(args) and (args.scenes or args.stac):
        raise UserError("--scenes and --stac say where the scenes of the pictures, clearings and --imagery are; they "
                        "cannot go with both --no_images and --no_clearings unless --imagery")
    if not _reads_scenes(args) and args.band_order:
        raise UserError("--band_order says how the scenes of the pictures, clearings and --imagery are read; it "
                        "cannot go with both --no_images and --no_clearings unless --imagery")
    clearings.check_arguments(args)
    if args.max_pictures < 0:
        raise UserError(f"--max_pictures {args.max_pictures}: must be 0 or more")
    for flag, default, off, why in (
            ("max_pictures", event_images.MAX_PICTURES, args.no_images, "--no_images: there are no pictures"),
            ("min_clearing_ha", clearings.MIN_CLEARING_HA, args.no_clearings, "--no_clearings: nothing is delineated"),
            ("zone_name_property", events.ZONE_NAME_PROPERTY, not args.zones,
             "no --zones: there are no zones to name")):
        if off and getattr(args, flag) != default:
            raise UserError(f"--{flag} {getattr(args, flag)} does nothing with {why}")


def _reads_scenes(args: argparse.Namespace) -> bool:
    """Whether the report reads scenes again: for pictures, clearings or ``--imagery``."""
    return args.imagery or not (args.no_images and args.no_clearings)


#: The report folder's manifest (:mod:`planet_core.publishing`): the current version's files. On local disks
#: the link ``REPORT/current`` (:data:`publishing.LINK`) leads to them: open ``REPORT/current/report.html``.
CURRENT = "current.json"


def run(argv: Sequence[str] | None = None) -> dict:
    """Write the alerts, events and the report as one new version of the report folder, switched to in one
    step once every file is written; return the summary (also written as ``summary.json``, whose paths are
    relative to the version's folder) with ``folder``: where the version is read (on local disks the link
    ``REPORT/current``)."""
    args = build_parser().parse_args(argv)
    _check(args)
    storage.check_writable(args.output)
    storage.check_own_folder(args.output, CURRENT, "--output", "a report needs a folder of its own")
    snapshot = queries.open_snapshot(args, args.aoi)  # every query of the report reads this one snapshot

    def write(folder: str, version: str) -> tuple[dict, list[str]]:
        try:
            with queries.spill_folder() as spill, _without_cycle_collection():
                summary, written = _write(args, snapshot, folder, spill, version)
        except (UserError, RunFailed):
            raise
        except duckdb.Error as error:  # its last lines are tuning advice: say what failed instead
            raise RunFailed(f"report failed: {queries.explain(error)}; the report in {args.output} is unchanged") \
                from error
        except Exception as error:
            raise RunFailed.of(error, "report", f"the report in {args.output}") from error
        return {"summary": summary}, written

    facts, where = publishing.new_version(args.output, CURRENT, write, "report.html", "report")
    return {**facts["summary"], "folder": where}


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while the report builds its values: hundreds of thousands of alerts,
    events and rows, none in a reference cycle (reference counting frees them), which the collector kept
    walking over: 15 % of a report of 52,497 alerts (7.1 against 6.0 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _from(folder: str, path: str) -> str:
    """``path`` as the report's files name it: relative to the version's folder for a local path (the
    report folder may be copied or served elsewhere; this machine's absolute paths mean nothing there),
    unchanged for a URI."""
    if "://" in path or "://" in folder:
        return path
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


def _write(args: argparse.Namespace, snapshot, folder: str, spill: str,  # noqa: ANN001
           version: str) -> tuple[dict, list[str]]:
    """Every file of report version ``version`` into ``folder``; the summary and the files' paths."""
    zones = events.read_zones(args.zones, args.zone_name_property) if args.zones else []
    given = sources.discover(args) if _reads_scenes(args) else []
    places = [{"type": "Feature", "properties": f.properties, "geometry": mapping(f.geometry)}
              for f in vectors.read(args.truth, "--truth")] if args.truth else None
    if places == []:  # scored against nothing, every alert would count as a false one
        raise UserError(f"--truth {args.truth}: no features (known change places)")
    assets = report_page.leaflet()  # before the work: a missing map library is a set-up error
    bundle_path, meta, figures = _model_card(args, snapshot)
    con = queries.connect(snapshot, materialize=True, memory_limit=args.memory_limit, spill=spill)
    dates = queries.scan_dates(con)
    if not dates:
        raise UserError(f"--scans {args.scans}: no scan rows" + (f" for --aoi {args.aoi}" if args.aoi else ""))
    judging = {"min_clear_fraction": args.min_clear_fraction}
    found = queries.alerts(con, dates, args.min_clear_fraction, args.highest_probability)
    grouped = events.events(found, args.event_window_days, args.min_event_ha, zones)
    items = event_images.scene_items(con, given) if _reads_scenes(args) else {}
    works = {} if args.no_images and args.no_clearings else {
        w.event.event_id: w for w in clearings.plan(con, grouped, found, items)}
    images = {} if args.no_images else event_images.write(grouped, works, sources.read_options(args), folder,
                                                          args.max_pictures)
    cleared = [] if args.no_clearings else _clearings(args, snapshot, grouped, works)
    if not args.no_clearings:
        grouped = clearings.attach(grouped, cleared, zones)
        found = clearings.attach_alerts(found, cleared)
    grouped = [dataclasses.replace(e, before_image=images[e.event_id].get("before"),
                                   after_image=images[e.event_id].get("after")) if e.event_id in images else e
               for e in grouped]

    files = {name: storage.join(folder, name) for name in
             ("alerts.parquet", "alerts.geojson", "events.parquet", "events.geojson", "clearings.parquet",
              "clearings.geojson", "summary.json", "report.html")}
    storage.write_bytes(files["alerts.parquet"], schema.parquet_bytes(_records(found, schema.ALERT_COLUMNS),
                                                                      schema.ALERT_COLUMNS))
    storage.write_text(files["alerts.geojson"], _geojson(found, schema.ALERT_COLUMNS, "alert_id"))
    event_rows = _records(grouped, schema.EVENT_COLUMNS)
    storage.write_bytes(files["events.parquet"], schema.parquet_bytes(event_rows, schema.EVENT_COLUMNS))
    storage.write_text(files["events.geojson"], _geojson(grouped, schema.EVENT_COLUMNS, "event_id"))
    storage.write_bytes(files["clearings.parquet"], schema.parquet_bytes(
        _records(cleared, schema.CLEARING_COLUMNS), schema.CLEARING_COLUMNS))
    storage.write_text(files["clearings.geojson"], _geojson(cleared, schema.CLEARING_COLUMNS, "clearing_id"))
    con.register("report_events", _events_table(event_rows))
    con.execute(f"CREATE VIEW {queries.DATASET}.events AS SELECT * FROM report_events")
    zone_rows = queries.run(con, "zone_alerts") if zones else None

    scored = None
    if places is not None:
        seen = [bytes(g) for (g,) in queries.execute(con, "tile_states", judging, columns=("geometry",),
                                                     where=f"judged AND scan_date = DATE '{dates[-1]}'").fetchall()]
        scored = score(found, seen, places)
        if not args.no_clearings:
            scored["clearings"] = clearings.score(cleared, places, grouped, args.min_clearing_ha)
    maps = map_layers.build(con, judging)
    imagery = event_images.imagery(con, {aoi: m.bounds for aoi, m in maps.items()}, items,
                                   sources.read_options(args)) if args.imagery else {}
    page = report_page.render(report_page.Content(
        scans=_from(folder, args.scans), dates=dates, maps=maps, imagery=imagery, found=found, events=grouped,
        clearings=None if args.no_clearings else cleared,
        coverage=queries.run(con, "coverage", judging), trends=queries.run(con, "label_trends"),
        zones=zone_rows, places=places, scored=scored, meta=meta, figures=figures,
        min_clear_fraction=args.min_clear_fraction, highest_probability=args.highest_probability,
        pictured=frozenset(images)), assets)
    storage.write_text(files["report.html"], page)
    (rows, tiles), = con.execute(f"SELECT COUNT(*), COUNT(DISTINCT aoi || chr(31) || tile_id) "
                                 f"FROM {queries.DATASET}.tile_labels").fetchall()
    pictures = sorted(path for sides in images.values() for path in sides.values() if path)
    summary = {
        "version": version,
        "scans": _from(folder, args.scans),
        "scans_snapshot": snapshot.snapshot_id,
        "scans_committed": snapshot.committed.isoformat() if snapshot.committed else None,
        "aois": sorted(
            r[0] for r in con.execute(f"SELECT DISTINCT aoi FROM {queries.DATASET}.observations").fetchall()
        ),
        "scan_dates": [d.isoformat() for d in dates],
        "rows": rows,
        "tiles": tiles,
        "alerts": len(found),
        "alerts_by_confidence": {
            level: sum(1 for a in found if a.confidence == level and a.status == "active")
            for level in rules.CONFIDENCE_LEVELS
        },
        "retracted": sum(1 for a in found if a.status == "retracted"),
        "events": len(grouped),
        "event_area_ha": round(sum(e.area_ha for e in grouped), 3),
        "clearings": None if args.no_clearings else len(cleared),
        "cleared_ha": None if args.no_clearings else round(sum(c.area_ha for c in cleared), 3),
        "bundle": _from(folder, bundle_path) if bundle_path else None,
        "model_version": meta.version if meta else None,
        "truth": scored,
        "files": {
            "alerts_parquet": "alerts.parquet",
            "alerts_geojson": "alerts.geojson",
            "events_parquet": "events.parquet",
            "events_geojson": "events.geojson",
            "clearings_parquet": "clearings.parquet",
            "clearings_geojson": "clearings.geojson",
            "report": "report.html",
        },
        "images": pictures,
    }
    storage.write_text(files["summary.json"], json.dumps(summary, indent=2))
    return summary, [*files.values(), *(storage.join(folder, path) for path in pictures)]


def _model_card(args: argparse.Namespace,
                snapshot: scans.Snapshot) -> tuple[str | None, bundles.BundleMeta | None, dict[str, bytes]]:
    """The bundle of the page's model card (``--bundle``, else the newest scan's), its description and
    figures. A ``--bundle`` that cannot be read is the user's error; the newest scan's bundle may since have
    been deleted or replaced, which leaves the page without its card (a warning), not without the report."""
    path = args.bundle or scans.latest_bundle(snapshot.warehouse, args.aoi, snapshot.snapshot_id)
    if not path:
        return None, None, {}
    try:
        meta = bundles.read_metadata(path)
    except bundles.BundleError as error:
        if args.bundle:
            raise
        log.warning("the page has no model card: the newest scan's bundle cannot be read (%s); --bundle names "
                    "one that can", error)
        return path, None, {}
    return path, meta, bundles.figures(path, meta, ("training_curves.png", "f2_vs_threshold.png"))


def _clearings(args: argparse.Namespace, snapshot: scans.Snapshot, grouped: Sequence[events.Event],
               works: dict[str, clearings.Work]) -> list[clearings.Clearing]:
    """The events' clearings: for each AOI, those ``planet-tiles delineate`` committed from the same scans
    (the AOI's newest scans commit in this snapshot) with the same options; else delineated here."""
    wanted, reused = clearings.options_of(args), []
    here = sorted({e.aoi for e in grouped})
    for aoi in list(here):
        latest = stored_clearings.latest(snapshot.warehouse, aoi)
        version = scans.aoi_version(snapshot.warehouse, aoi, snapshot.snapshot_id)
        if latest and latest[0].facts.get("scans_versions", {}).get(aoi) == version \
                and latest[0].facts.get("delineation") == wanted:
            reused += [clearings.from_row(r) for r in latest[1].to_pylist()]
            here.remove(aoi)
            log.info("%s: clearings from the clearings table (delineate run %s)", aoi, latest[0].facts["run_id"])
    todo = [works[e.event_id] for e in grouped if e.aoi in here]
    if todo:
        log.info("delineating the clearings of %d events here (planet-tiles delineate does it on Beam, at scale)",
                 len(todo))
    read = dataclasses.replace(sources.read_options(args), cloud_mask=AUTO)
    return reused + clearings.for_events(todo, read, args.min_clearing_ha)


def _events_table(rows: list[dict]) -> pa.Table:
    """Event rows as an Arrow table of the events schema (DuckDB queries it as planet_tiles.events)."""
    return pa.Table.from_pylist(rows, schema=schema.arrow_schema(schema.EVENT_COLUMNS))


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    summary = run(argv)
    print(json.dumps({k: summary[k] for k in ("scan_dates", "tiles", "alerts", "alerts_by_confidence", "events",
                                              "truth")}, default=str))
    print(f"report: {storage.join(summary['folder'], summary['files']['report'])}")


if __name__ == "__main__":
    main()
