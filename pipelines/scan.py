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

from pipelines import sources
from pipelines.geo import aoi as aois
from pipelines.geo import tiling
from pipelines.geo.grid import NATIVE, UTM
from pipelines.sources.base import SceneItem
from pipelines.sources.basemap import mosaic_month
from pipelines.steps import accounting, scan_setup
from pipelines.steps.commits import CommitPartition
from pipelines.steps.inference import PredictTiles
from pipelines.steps.options import parse, pipeline_options, submitted_only
from pipelines.steps.progress import Progress
from pipelines.steps.tiles import Tiles
from pipelines.store import catalog, scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import commands, logs, publishing, storage
from planet_core.errors import RunFailed, UserError
from planet_model.bundle import read_metadata

log = logging.getLogger(__name__)

#: A scan prints a warning when at least this share of its tiles lie outside the training value ranges.
DRIFT_WARNING = 0.2


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("scan", __doc__)
    p.add_argument("--aoi", required=True, help="area of interest: a vector file GDAL reads (GeoJSON, GeoPackage, "
                                                "Shapefile, FlatGeobuf...; any CRS; FILE|layername=NAME for one "
                                                "layer) or west,south,east,north (EPSG:4326)")
    p.add_argument("--aoi_name", help="name of the AOI in the output (default: the file's name)")
    sources.add_arguments(p)
    p.add_argument("--output", required=True, help="the scans' warehouse folder, local or gs://")
    catalog.add_argument(p)
    p.add_argument("--scan_date", help="YYYY-MM-DD (default: for basemap quads the first day of their mosaic's "
                                       "month, else today, UTC)")
    scan_setup.add_bundle_arguments(p)
    p.add_argument("--allow_resampling", action="store_true",
                   help="scan scenes whose own ground pixel is more than 10%% off the bundle's (refused by default: "
                        "the model would see them resampled to its scale)")
    tiling.add_arguments(p, grid_default=UTM, tile_size=False)
    return p


def default_scan_date(items: Sequence[SceneItem]) -> str:
    """The scan date when ``--scan_date`` is not given: the first day of the month of the basemap the
    quads come from (all from one monthly mosaic), else today (UTC)."""
    months = {mosaic_month(i.uri) for i in items}
    if months and None not in months:
        if len(months) > 1:
            raise UserError(f"the scenes are quads of {len(months)} monthly mosaics ({', '.join(sorted(months))}); "
                            "scan one month at a time, or pass --scan_date")
        return f"{months.pop()}-01"
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run a scan and return what its commit says of it (counts, run id, snapshot id)."""
    args, beam_args = parse(build_parser(), argv)
    scan_setup.check_batch_size(args)
    if not (args.scenes or args.stac):
        raise UserError("no scenes: give --scenes or --stac")
    try:
        aoi = aois.load(args.aoi, args.aoi_name)
        if args.scan_date:
            scans.check_scan_date(args.scan_date)
    except ValueError as error:
        raise UserError(str(error)) from None
    warehouse = Warehouse(args.output, args.catalog)
    warehouse.check_own_folder("--output")
    meta = read_metadata(args.bundle)
    spec = scan_setup.tile_spec(args, meta, aoi.geometry)
    read = sources.read_options(args, meta.bands)
    items = sources.discover(args, aoi.geometry)
    scan_date = args.scan_date or default_scan_date(items)
    refused = scan_setup.check_scenes(items, meta, read, args.product, aoi.geometry, args.allow_resampling)
    items = [i for i in items if i.uri not in {o["uri"] for o in refused}]
    if warehouse.local:
        storage.check_writable(args.output)
    this_run = publishing.new_run_id()
    errors = scans.errors_path(warehouse, this_run)
    facts = {"pipeline": "scan", "run_id": this_run, "scan_id": f"{aoi.name}:{scan_date}:{meta.version}",
             "aoi": aoi.name, "scan_date": scan_date, "grid": spec.grid, "zoom": spec.zoom,
             "cell_size": spec.cell_size, "tile_size": spec.tile_size,
             "tile_matrix": spec.matrix(aoi.geometry).name if spec.grid != NATIVE else None,
             "bundle": args.bundle, "model_version": meta.version, "domain": dataclasses.asdict(meta.domain),
             "scenes": len(items) + len(refused), "started": dt.datetime.now(dt.timezone.utc).isoformat(),
             "options": {k: v for k, v in vars(args).items() if v is not None}, "beam_args": list(beam_args)}
    options = pipeline_options(beam_args, save_main_session)
    try:
        with beam.Pipeline(options=options) as pipeline:
            tiles = (pipeline | "Scenes" >> beam.Create(items)
                     | "Tiles" >> Tiles(spec, read, [aoi], when=sources.acquired(args)))
            rows = tiles["tiles"] | "Predict" >> PredictTiles(args.bundle, meta, args.batch_size, scan_date,
                                                              args.weather_one)
            written = (rows["rows"] | "Progress" >> beam.ParDo(Progress("scan: tiles labelled"))
                       | "WriteParquet" >> beam.io.WriteToParquet(
                           storage.join(scans.data_folder(warehouse, scan_date, aoi.name), f"part-{this_run}"),
                           schema.arrow_schema(), codec=schema.COMPRESSION, file_name_suffix=".parquet",
                           # list items named "element", as Iceberg and the spec name them
                           use_compliant_nested_type=True))
            refused_scenes = pipeline | "RefusedScenes" >> beam.Create(refused)
            outcomes = (tiles["outcomes"], rows["outcomes"], refused_scenes) | "AllOutcomes" >> beam.Flatten()
            summary, error_files = outcomes | "Account" >> accounting.Account(errors)
            _ = summary | "Commit" >> beam.ParDo(CommitPartition(warehouse, scan_date, aoi.name, facts, errors),
                                                 beam.pvalue.AsList(written), beam.pvalue.AsList(error_files))
    except Exception as error:
        raise RunFailed.of(error, "scan", "the scans table",
                           scans.committed_before_failing(warehouse, this_run)) from error
    if submitted_only(options):
        return {"submitted": True, "output": args.output, "scan_id": facts["scan_id"]}
    committed = scans.run_commit(warehouse, this_run)
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
