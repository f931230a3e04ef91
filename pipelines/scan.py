"""Regional scan: apply a model bundle to every tile of an area of interest and write per-tile Parquet.

    python -m pipelines.scan --aoi region.geojson --aoi_name xingu --scenes 'gs://b/scenes/*.tif' \
        --bundle gs://b/bundles/v3 --output gs://b/scans --scan_date 2026-11-24

Writes one partition (scan date, AOI) of the scans table, ``planet_tiles.tile_labels`` in the warehouse
``OUTPUT`` (:mod:`pipelines.store.scans`; rows as :mod:`pipelines.store.schema` defines them): the data
files first, then one Iceberg commit that replaces the partition with them and carries the run's counts
(``inferred + skipped + failed == enumerated``); failed items' error lines go to ``OUTPUT/errors/``. A run
that fails as a whole, or writes nothing, commits nothing. Tiles are enumerated per scene on workers,
read through windowed reads (WarpedVRT into the grid), preprocessed by the bundle's own model layers
and labelled with Beam's RunInference. All Beam flags are accepted. The streaming scan
(:mod:`pipelines.stream`) runs the same steps on scenes as they arrive.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Sequence

import apache_beam as beam
from affine import Affine
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from pipelines.geo import aoi as aois
from pipelines.geo import tiling
from pipelines.geo.grid import (
    NATIVE,
    UTM,
    WEB_MERCATOR_QUAD,
    WebMercatorGrid,
    ground_pixel_m,
    scene_footprint,
    zoom_for_resolution,
)
from pipelines.geo.scenes import (
    SceneError,
    SceneReader,
    SceneSource,
    mosaic_month,
    resolve_sources,
)
from pipelines.steps import accounting
from pipelines.steps.accounting import FAILED, outcome
from pipelines.steps.commits import CommitPartition
from pipelines.steps.inference import LabelTiles
from pipelines.steps.options import parse, pipeline_options, submitted_only
from pipelines.steps.tiles import Tiles
from pipelines.store import catalog, scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import logs, publishing, storage
from planet_core.errors import RunFailed, UserError
from planet_core.imagery import PRODUCTS, UNKNOWN
from planet_model.bundle import BundleMeta

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles scan", description=__doc__.split("\n\n")[0])
    p.add_argument("--aoi", required=True, help="area of interest: GeoJSON file or west,south,east,north (EPSG:4326)")
    p.add_argument("--aoi_name", help="name of the AOI in the output (default: the GeoJSON file's name)")
    p.add_argument("--scenes", nargs="*", default=[], help="scene paths or globs, local or gs://")
    p.add_argument("--stac", help="a STAC ItemCollection JSON listing scenes")
    p.add_argument("--output", required=True, help="the scans' warehouse folder, local or gs://")
    catalog.add_argument(p)
    p.add_argument("--scan_date", help="YYYY-MM-DD (default: for basemap quads the first day of their mosaic's "
                                       "month, else today, UTC)")
    add_bundle_arguments(p)
    tiling.add_arguments(p, grid_default=UTM, tile_size=False)
    return p


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """The model flags of every scan (batch and streaming)."""
    parser.add_argument("--bundle", required=True, help="model bundle folder, local or gs://")
    parser.add_argument("--batch_size", type=int, default=64, help="tiles per model call")
    parser.add_argument("--product", choices=[p for p in PRODUCTS if p != UNKNOWN],
                        help="what the scenes' values are, when you know better than their names say; it "
                             "also lets a scan run whose scenes' dtype differs from the bundle's")
    parser.add_argument("--weather_one", action="store_true",
                        help="exactly one weather label per tile (clear, cloudy, haze or partly_cloudy: the one "
                             "with the largest probability relative to its threshold), as in the Kaggle data")


def check_batch_size(args: argparse.Namespace) -> None:
    if args.batch_size <= 0:
        raise UserError(f"--batch_size {args.batch_size}: must be a positive number of tiles per model call")


#: The UTM grid must give ground pixels within this share of the bundle's, anywhere in the AOI.
UTM_TOLERANCE = 0.10
#: Beyond this share, a WebMercatorQuad (or native) pixel is reported as far from the bundle's.
WARN_TOLERANCE = 0.25
#: A scan prints a warning when at least this share of its tiles lie outside the training value ranges.
DRIFT_WARNING = 0.2


def tile_spec(args: argparse.Namespace, meta: BundleMeta, region: BaseGeometry) -> tiling.TileSpec:
    """The scan's tiles: the bundle's chip size and bands, on a grid whose ground pixel is the bundle's.

    UTM (default): the cell size is the bundle's ``gsd_m`` and the zone that of each AOI's centre; the
    ground pixel must stay within 10 % of it over the whole AOI. WebMercatorQuad: without ``--zoom`` the
    level closest to ``gsd_m``; a pixel more than 25 % off is reported before the scan starts.
    """
    gsd = meta.domain.gsd_m
    zoom = args.zoom
    if args.grid == UTM and not (args.cell_size or gsd):
        raise UserError(f"the bundle {args.bundle} records no ground resolution (an older bundle): pass "
                         "--cell_size METRES, or --grid WebMercatorQuad --zoom Z")
    if args.grid == WEB_MERCATOR_QUAD and zoom is None:
        if not gsd:
            raise UserError(f"the bundle {args.bundle} records no ground resolution (an older bundle): pass --zoom")
        zoom = zoom_for_resolution(gsd, region.centroid.y)
    try:
        spec = tiling.from_args(args, tile_size=meta.chip_size, zoom=zoom, cell_size=gsd, bands=meta.bands)
    except ValueError as error:
        raise UserError(f"{error} (the bundle was trained on {meta.chip_size}-px chips)") from None
    if gsd and spec.grid != NATIVE:
        check_resolution(spec, region, gsd)
    return spec


def check_resolution(spec: tiling.TileSpec, region: BaseGeometry, gsd: float) -> tuple[float, float]:
    """The grid's smallest and largest ground pixel over the AOI (its corners and centre), checked
    against the bundle's ``gsd``: beyond 10 % on the UTM grid the scan is refused, beyond 25 % on
    WebMercatorQuad it is reported."""
    matrix = spec.matrix(region)
    if spec.grid == UTM:
        matrix.tms()  # the tile matrix set itself, built here so that a bad one fails before any work
    west, south, east, north = region.bounds
    points = [(west, south), (west, north), (east, south), (east, north), (region.centroid.x, region.centroid.y)]
    cell = spec.cell_size if spec.grid == UTM else WebMercatorGrid.tms().matrix(spec.zoom).cellSize
    to_grid = Transformer.from_crs("EPSG:4326", matrix.crs, always_xy=True)
    sizes = [ground_pixel_m(matrix.crs, Affine(cell, 0, x, 0, -cell, y), 0, 0)
             for x, y in (to_grid.transform(lon, lat) for lon, lat in points)]
    low, high = min(sizes), max(sizes)
    worst = max(abs(low / gsd - 1), abs(high / gsd - 1))
    described = (f"the {spec.grid} grid's ground pixel is {low:.2f} to {high:.2f} m over the AOI; the bundle "
                 f"learned from {gsd:.2f} m")
    if spec.grid == UTM and worst > UTM_TOLERANCE:
        raise UserError(f"{described}: more than {UTM_TOLERANCE:.0%} off. Split the AOI by UTM zone or pass "
                         "--utm_zone for each part")
    if worst > WARN_TOLERANCE:
        log.warning("%s: objects look %.2f times their training size to the model; scan on --grid UTM to "
                    "match it", described, gsd / ((low + high) / 2))
    return low, high


def check_scenes(sources: Sequence[SceneSource], meta: BundleMeta, spec: tiling.TileSpec, product: str | None,
                 region: BaseGeometry) -> list[dict]:
    """Check every scene's header against the bundle's domain before any work.

    A product that differs from the bundle's (both known) refuses the scan, naming both and the fix:
    a model applied to another product's values fails silently. A scene that cannot give the bundle's
    bands, or has another dtype (unless ``--product`` says the user knows better), becomes a failed
    outcome, unless no scene can, which refuses the scan. Scenes that cannot be opened are left to the
    pipeline's error lines.
    """
    domain = meta.domain
    wrong_product, failed, touching, opened = [], [], 0, 0
    for source in sources:
        try:
            with SceneReader(source, spec.band_order) as reader:  # every band, to name the missing ones
                opened += 1
                height, width = reader.shape
                touching += scene_footprint(reader.crs, reader.transform, width, height).intersects(region)
                missing = [b for b in meta.bands if b not in reader.layout.available()]
                scene_product = product or reader.product
                if UNKNOWN not in (scene_product, domain.product) and scene_product != domain.product:
                    wrong_product.append(f"{source.uri} is {scene_product}")
                elif missing:
                    failed.append(outcome(FAILED, source.scene_id, source.uri, reason=(
                        f"bands: it provides {', '.join(reader.layout.available())}, not {', '.join(missing)}")))
                elif reader.dtype != meta.dtype and not product:
                    failed.append(outcome(FAILED, source.scene_id, source.uri, reason=(
                        f"dtype: it is {reader.dtype}, the bundle was trained on {meta.dtype} (pass --product "
                        "if its values are the bundle's product all the same)")))
        except SceneError as error:
            if len(sources) == 1:
                raise UserError(str(error)) from None
            continue
    if wrong_product:
        raise UserError(f"the bundle was trained on {domain.product} imagery; "
                         + "; ".join(wrong_product[:3]) + (f" and {len(wrong_product) - 3} more" if len(wrong_product) > 3 else "")
                         + f". Scan {domain.product} scenes, or pass --product {domain.product} if these are "
                         "that product whatever their names say")
    if failed and len(failed) == len(sources):
        raise UserError(f"the bundle needs bands {', '.join(meta.bands)} ({meta.dtype}); no scene can give "
                         "them: " + "; ".join(f"{o['uri']}: {o['reason']}" for o in failed[:3]))
    for item in failed:
        log.warning("%s: %s (counted as failed)", item["uri"], item["reason"])
    if sources and not touching and opened == len(sources):
        raise RunFailed(f"scan: the AOI touches none of the {len(sources)} scenes, so there is nothing to scan; "
                        "the scans table is unchanged")
    return failed


def default_scan_date(sources: Sequence[SceneSource]) -> str:
    """The scan date when ``--scan_date`` is not given: the first day of the month of the basemap the
    quads come from (all from one monthly mosaic), else today (UTC)."""
    months = {mosaic_month(s.uri) for s in sources}
    if months and None not in months:
        if len(months) > 1:
            raise UserError(f"the scenes are quads of {len(months)} monthly mosaics ({', '.join(sorted(months))}); "
                            "scan one month at a time, or pass --scan_date")
        return f"{months.pop()}-01"
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run a scan and return what its commit says of it (counts, run id, snapshot id)."""
    from planet_model.bundle import read_metadata

    args, beam_args = parse(build_parser(), argv)
    check_batch_size(args)
    if not (args.scenes or args.stac):
        raise UserError("no scenes: give --scenes or --stac")
    try:
        aoi = aois.load(args.aoi, args.aoi_name)
        if args.scan_date:
            scans.check_scan_date(args.scan_date)
    except ValueError as error:
        raise UserError(str(error)) from None
    warehouse = Warehouse(args.output, args.catalog)
    meta = read_metadata(args.bundle)
    spec = tile_spec(args, meta, aoi.geometry)
    sources = [dataclasses.replace(s, product=args.product or s.product) for s in resolve_sources(args.scenes, args.stac)]
    scan_date = args.scan_date or default_scan_date(sources)
    refused = check_scenes(sources, meta, spec, args.product, aoi.geometry)
    sources = [s for s in sources if s.uri not in {o["uri"] for o in refused}]
    if warehouse.local:
        storage.check_writable(args.output)
    this_run = publishing.new_run_id()
    errors = scans.errors_path(warehouse, this_run)
    facts = {"pipeline": "scan", "run_id": this_run, "scan_id": f"{aoi.name}:{scan_date}:{meta.version}",
             "aoi": aoi.name, "scan_date": scan_date, "grid": spec.grid, "zoom": spec.zoom,
             "cell_size": spec.cell_size, "tile_size": spec.tile_size,
             "tile_matrix": spec.matrix(aoi.geometry).name if spec.grid != NATIVE else None,
             "bundle": args.bundle, "model_version": meta.version, "domain": dataclasses.asdict(meta.domain),
             "scenes": len(sources) + len(refused), "started": dt.datetime.now(dt.timezone.utc).isoformat(),
             "options": {k: v for k, v in vars(args).items() if v is not None}, "beam_args": list(beam_args)}
    options = pipeline_options(beam_args, save_main_session)
    try:
        with beam.Pipeline(options=options) as pipeline:
            tiles = pipeline | "Scenes" >> beam.Create(sources) | "Tiles" >> Tiles(spec, [aoi])
            rows = tiles["tiles"] | "Label" >> LabelTiles(args.bundle, meta, args.batch_size, scan_date, args.weather_one)
            written = rows["rows"] | "WriteParquet" >> beam.io.WriteToParquet(
                storage.join(scans.data_folder(warehouse, scan_date, aoi.name), f"part-{this_run}"),
                schema.arrow_schema(), codec=schema.COMPRESSION, file_name_suffix=".parquet",
                use_compliant_nested_type=True)  # list items named "element", as Iceberg and the spec name them
            refused_scenes = pipeline | "RefusedScenes" >> beam.Create(refused)
            outcomes = (tiles["outcomes"], rows["outcomes"], refused_scenes) | "AllOutcomes" >> beam.Flatten()
            summary, error_files = outcomes | "Account" >> accounting.Account(errors)
            _ = summary | "Commit" >> beam.ParDo(CommitPartition(warehouse, scan_date, aoi.name, facts, errors),
                                                 beam.pvalue.AsList(written), beam.pvalue.AsList(error_files))
    except Exception as error:  # noqa: BLE001 - whatever broke the run, the table is as it was: say so in one line
        raise RunFailed.of(error, "scan", "the scans table") from error
    if submitted_only(options):
        return {"submitted": True, "output": args.output, "scan_id": facts["scan_id"]}
    committed = next((c for c in scans.commits(warehouse) if c.facts.get("run_id") == this_run), None)
    if committed is None:
        raise RunFailed(f"scan: run {this_run} finished without a commit in {args.output}; the table is unchanged")
    result = {**committed.facts, "snapshot_id": committed.snapshot_id}
    if result["failed"]:
        log.warning("%d of %d tiles failed; their error lines are in %s", result["failed"], result["enumerated"],
                    result["errors"])
    if result["inferred"] and result.get("out_of_domain", 0) >= DRIFT_WARNING * result["inferred"]:
        log.warning("%d of %d tiles have band means outside the bundle's training ranges: the model is far from "
                    "its data there (check the product, bands and scaling of the scenes)",
                    result["out_of_domain"], result["inferred"])
    return result


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    manifest = run(argv)
    print(json.dumps({k: manifest[k] for k in ("enumerated", "inferred", "skipped", "failed", "submitted", "scan_id",
                                               "snapshot_id", "errors") if manifest.get(k) is not None}))


if __name__ == "__main__":
    main()
