"""Regional scan: apply a model bundle to every tile of an area of interest and write per-tile Parquet.

    python -m pipelines.scan --aoi region.geojson --aoi_name xingu --scenes 'gs://b/scenes/*.tif' \
        --bundle gs://b/bundles/v3 --output gs://b/scans --scan_date 2026-11-24

Writes ``OUTPUT/scan_date=D/aoi=NAME/part-*.parquet`` (GeoParquet, schema in :mod:`pipelines.schema`),
``_manifest.json`` (``inferred + skipped + failed == enumerated``) and ``errors-*.jsonl`` beside them.
Re-running a scan date and AOI replaces that partition only. Tiles are enumerated per scene on workers,
read through windowed reads (WarpedVRT into the grid), preprocessed by the bundle's own model layers
and labelled with Beam's RunInference. All Beam flags are accepted. ``--streaming`` runs the same tile
logic on scenes as they arrive (:mod:`pipelines.stream`, which documents its own flags).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import posixpath
import sys
from collections.abc import Iterator, Sequence

import apache_beam as beam
import numpy as np
from pyproj import Geod

from pipelines import accounting, schema, storage
from pipelines.accounting import FAILED, WRITTEN, outcome
from pipelines.grid import GRIDS, NATIVE, WEB_MERCATOR_QUAD, NativeGrid, WebMercatorGrid, parse_region, \
    scene_footprint, zoom_for_resolution
from pipelines.options import pipeline_options, run_id, submitted_only
from pipelines.scenes import SceneError, SceneReader, SceneSource, iter_blocks, parse_band_order, resolve_sources

OUTCOMES = "outcomes"
GEOD = Geod(ellps="WGS84")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles scan", description=__doc__.split("\n\n")[0])
    p.add_argument("--aoi", required=True, help="area of interest: GeoJSON file or west,south,east,north (EPSG:4326)")
    p.add_argument("--aoi_name", help="name of the AOI in the output (default: the GeoJSON file's name)")
    p.add_argument("--scenes", nargs="*", default=[], help="scene paths or globs, local or gs://")
    p.add_argument("--stac", help="a STAC ItemCollection JSON listing scenes")
    p.add_argument("--bundle", required=True, help="model bundle folder, local or gs://")
    p.add_argument("--output", required=True, help="output prefix, local or gs://")
    p.add_argument("--scan_date", help="YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--grid", choices=GRIDS, default=WEB_MERCATOR_QUAD)
    p.add_argument("--zoom", type=int, help="WebMercatorQuad zoom (default: closest to the bundle's resolution)")
    p.add_argument("--min_valid_fraction", type=float, default=0.5)
    p.add_argument("--batch_size", type=int, default=64, help="tiles per model call")
    p.add_argument("--band_order", help="source band roles, e.g. blue,green,red,nir (default: colour interpretation)")
    p.add_argument("--tiles_per_task", type=int, default=64, help="tiles read together from one open scene")
    return p


def aoi_name(args: argparse.Namespace) -> str:
    if args.aoi_name:
        name = args.aoi_name
    elif args.aoi.endswith((".geojson", ".json")):
        name = posixpath.basename(args.aoi).rsplit(".", 1)[0]
    else:
        raise SystemExit("--aoi_name is required when --aoi is a bounding box")
    if not name or any(ch in name for ch in "/=\\ "):
        raise SystemExit(f"--aoi_name {name!r}: use letters, digits, '-', '_' (it becomes a path part)")
    return name


def check_scenes(sources: Sequence[SceneSource], meta: dict, band_order: Sequence[str] | None) -> None:
    """Fail before any work if a readable scene cannot provide the bundle's bands or dtype.

    Reads headers only. Scenes that cannot be opened at all are left to the pipeline's error lines.
    """
    problems = []
    for source in sources:
        try:
            with SceneReader(source, band_order) as reader:
                missing = [b for b in meta["bands"] if b not in reader.layout.available()]
                if missing:
                    problems.append(f"{source.uri} provides {', '.join(reader.layout.available())}, "
                                    f"not {', '.join(missing)}")
                elif reader.dtype != meta["dtype"]:
                    problems.append(f"{source.uri} is {reader.dtype}, the bundle was trained on {meta['dtype']}")
        except SceneError:
            continue
    if problems:
        raise SystemExit(f"the bundle needs bands {', '.join(meta['bands'])} ({meta['dtype']}): "
                         + "; ".join(problems))


class EnumerateScanTiles(beam.DoFn):
    """Scene -> blocks of tiles of the AOI that intersect the scene's footprint (on a worker)."""

    def __init__(self, args: argparse.Namespace, zoom: int | None) -> None:
        self.args, self.zoom = args, zoom

    def setup(self) -> None:
        self.region = parse_region(self.args.aoi)
        self.band_order = parse_band_order(self.args.band_order)

    def process(self, source: SceneSource) -> Iterator:
        try:
            with SceneReader(source, self.band_order) as reader:
                if self.args.grid == NATIVE:
                    height, width = reader.shape
                    grid = NativeGrid(source.scene_id, reader.crs, tuple(reader.transform)[:6], width, height)
                    tiles = [grid.tile(r, c) for r, c in grid.tiles(self.region)]
                else:
                    footprint = scene_footprint(reader.crs, reader.transform, reader.shape[1], reader.shape[0])
                    grid = WebMercatorGrid(self.zoom)
                    tiles = [grid.tile(x, y) for x, y in grid.tiles(footprint.intersection(self.region))]
        except Exception as error:  # noqa: BLE001 - a bad scene is an error line, not a failed job
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri, reason=f"scene: {error}"))
            return
        for block in iter_blocks(tiles, self.args.tiles_per_task):
            yield source, block


class ReadTiles(beam.DoFn):
    """A block of tiles -> ``(tile metadata, chip)`` for the model, with an outcome for each tile not kept.

    A task is ``(source, tiles)`` or ``(source, tiles, context)``; the streaming scan's context (``aoi``,
    ``scan_date``, ``scan_id``) rides along in the metadata into the row.
    """

    def __init__(self, args: argparse.Namespace, bands: Sequence[str]) -> None:
        self.args, self.bands = args, list(bands)

    def process(self, task: tuple) -> Iterator:
        source, tiles, *context = task
        band_order = parse_band_order(self.args.band_order)
        extra = context[0] if context else {}

        def keep(reader: SceneReader, tile, image: np.ndarray, valid: float) -> Iterator:  # noqa: ANN001
            polygon = tile.polygon_wgs84()
            meta = {"tile_id": tile.tile_id, "scene_id": reader.source.scene_id, "uri": reader.source.uri,
                    "acquired": reader.acquired, "geometry": polygon.wkb, "lon": polygon.centroid.x,
                    "lat": polygon.centroid.y, "area_m2": abs(GEOD.geometry_area_perimeter(polygon)[0]),
                    "valid_fraction": valid, **extra}
            yield meta, image

        yield from accounting.screen_tiles(source, tiles, lambda: SceneReader(source, band_order, self.bands),
                                           self.args.min_valid_fraction, OUTCOMES, keep)


class ToRow(beam.DoFn):
    """Model output -> a Parquet row (thresholds applied) and a ``written`` outcome."""

    def __init__(self, meta: dict, scan_id: str) -> None:
        self.labels = list(meta["labels"])
        self.cut = np.array([meta["thresholds"][n] for n in self.labels], dtype=np.float32)
        self.version, self.scan_id = meta["version"], scan_id

    def process(self, keyed: tuple) -> Iterator:
        tile, result = keyed
        # Rounded so that the batch a tile happened to share (which can move the last float bits on
        # some CPU kernels) never changes a row: same inputs, same bundle, same output.
        probs = np.round(np.asarray(result.inference, dtype=np.float64), 6).astype(np.float32)
        acquired = dt.datetime.fromisoformat(tile["acquired"]).astimezone(dt.timezone.utc) if tile["acquired"] else None
        row = {"tile_id": tile["tile_id"], "scene_id": tile["scene_id"],
               "scan_id": tile.get("scan_id", self.scan_id), "acquired": acquired, "geometry": tile["geometry"],
               "lon": float(tile["lon"]), "lat": float(tile["lat"]), "area_m2": float(tile["area_m2"]),
               "valid_fraction": float(tile["valid_fraction"]),
               **{f"p_{n}": float(p) for n, p in zip(self.labels, probs)},
               "labels": [n for n, p, t in zip(self.labels, probs, self.cut) if p >= t],
               "model_version": self.version,
               **{key: tile[key] for key in ("aoi", "scan_date") if key in tile}}
        yield row
        yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, tile["scene_id"], tile["uri"], tile["tile_id"]))


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run a scan and return its manifest."""
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from pipelines.inference import BundleModelHandler
    from planet_model.bundle import read_metadata

    args, beam_args = build_parser().parse_known_args(argv)
    if not (args.scenes or args.stac):
        raise SystemExit("no scenes: give --scenes or --stac")
    name = aoi_name(args)
    scan_date = args.scan_date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    dt.date.fromisoformat(scan_date)
    meta = read_metadata(args.bundle)
    region = parse_region(args.aoi)
    zoom = args.zoom
    if args.grid == WEB_MERCATOR_QUAD and zoom is None:
        zoom = zoom_for_resolution(meta.get("resolution_m") or 4.77, region.centroid.y)
    sources = resolve_sources(args.scenes, args.stac)
    check_scenes(sources, meta, parse_band_order(args.band_order))
    partition = storage.join(args.output, f"scan_date={scan_date}", f"aoi={name}")
    this_run = run_id()
    scan_id = f"{name}:{scan_date}:{meta['version']}"
    run_info = {"pipeline": "scan", "run_id": this_run, "scan_id": scan_id, "aoi": name, "scan_date": scan_date,
                "grid": args.grid, "zoom": zoom, "bundle": args.bundle, "model_version": meta["version"],
                "started": dt.datetime.now(dt.timezone.utc).isoformat(), "options": vars(args),
                "beam_args": list(beam_args)}
    handler = KeyedModelHandler(BundleModelHandler(args.bundle, args.batch_size))
    options = pipeline_options(beam_args, save_main_session)
    with beam.Pipeline(options=options) as pipeline:
        tasks = (pipeline
                 | "Scenes" >> beam.Create(sources)
                 | "EnumerateTiles" >> beam.ParDo(EnumerateScanTiles(args, zoom)).with_outputs(OUTCOMES, main="tasks"))
        tiles = (tasks.tasks
                 | "SpreadTasks" >> beam.Reshuffle()
                 | "ReadTiles" >> beam.ParDo(ReadTiles(args, meta["bands"])).with_outputs(OUTCOMES, main="tiles"))
        rows = (tiles.tiles
                | "RunInference" >> RunInference(handler)
                | "ToRows" >> beam.ParDo(ToRow(meta, scan_id)).with_outputs(OUTCOMES, main="rows"))
        written = rows.rows | "WriteParquet" >> beam.io.WriteToParquet(
            storage.join(partition, f"part-{this_run}"), schema.arrow_schema(), file_name_suffix=".parquet")
        outcomes = (tasks[OUTCOMES], tiles[OUTCOMES], rows[OUTCOMES]) | "AllOutcomes" >> beam.Flatten()
        summary, errors = outcomes | "Account" >> accounting.Account(partition, this_run)
        _ = summary | "Finalize" >> beam.ParDo(
            accounting.Finalize(partition, "_manifest.json", ["part-*", "errors-*"], run_info, "inferred"),
            beam.pvalue.AsList(written), beam.pvalue.AsList(errors))
    if submitted_only(options):
        return {"submitted": True, "partition": partition, "scan_id": scan_id}
    return json.loads(storage.read_text(storage.join(partition, "_manifest.json")))


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--streaming" in argv:  # the same tile logic, unbounded: see pipelines.stream
        from pipelines import stream

        stream.main([a for a in argv if a != "--streaming"])
        return
    logging.getLogger().setLevel(logging.INFO)
    manifest = run(argv)
    print(json.dumps({k: manifest[k] for k in ("enumerated", "inferred", "skipped", "failed", "submitted", "partition")
                      if k in manifest}))


if __name__ == "__main__":
    main()
