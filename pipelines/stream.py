"""Streaming scan: label each new scene's tiles minutes after it lands, and raise alerts as they happen.

    python -m pipelines.stream --subscription projects/P/subscriptions/new-scenes \
        --regions infra/regions.yaml --bundle gs://B/bundles/v4 --output gs://B/scans --catalog biglake:P \
        --alerts_table P:planet_tiles.alerts \
        --runner DataflowRunner --project P --region us-central1 --temp_location gs://B/tmp
    (or: planet-tiles stream ...)

Scenes arrive as Cloud Storage ``OBJECT_FINALIZE`` notifications on Pub/Sub; objects that are not
scenes (``--scene_pattern``) are ignored, and a notification seen before (same object and generation)
is dropped. Each scene's tiles inside the configured AOIs (``--aoi`` or every region of ``--regions``)
go through the batch scan's own steps (windowed reads, the bundle's model via RunInference,
thresholds) and come out as the batch scan's rows, with ``aoi`` and ``scan_date`` (the acquisition
date, UTC). Each ``--window_minutes`` window's rows are committed to the scans table of ``--output`` in one
append (a file per partition; a retried window adds nothing twice), so that ``planet-tiles report``, the
queries and BigQuery read batch and streaming rows alike; the commit names the bundle.

Alerts use the batch rules on per-tile state (:mod:`pipelines.steps.alert_state`): new observations wait
``--settle_minutes`` of event time (Pub/Sub publish time) so that scenes of one place arriving out of
order are put in acquisition order before the rule runs. An alert is emitted when first detected and
again when its confidence level or status changes (a log: the latest row per ``alert_id`` is its state).
Bad scenes and tiles become error lines (``OUTPUT/errors/stream-*.jsonl``) and counters.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.gcp.bigquery_tools import parse_table_reference
from apache_beam.io.gcp.pubsub import parse_subscription, parse_topic
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipelines import sources
from pipelines.analysis import queries
from pipelines.geo import aoi as aois
from pipelines.geo import tiling
from pipelines.geo.grid import NATIVE, UTM
from pipelines.sources.reader import ReadOptions
from pipelines.steps import scan_setup, sinks
from pipelines.steps.alert_state import ReadHistory, TileAlerts, keyed_by_tile
from pipelines.steps.commits import CommitWindows
from pipelines.steps.inference import PredictTiles
from pipelines.steps.notifications import FirstNotification, notified_scene
from pipelines.steps.options import LOCAL_RUNNER, STREAMING_LOCAL_RUNNER, parse, pipeline_options
from pipelines.steps.tiles import Tiles
from pipelines.store import catalog, schema
from pipelines.store.catalog import Warehouse
from planet_core import commands, logs, publishing
from planet_core.errors import UserError
from planet_model.bundle import BundleMeta, read_metadata


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("stream", __doc__)
    p.add_argument(
        "--subscription", required=True, help="Pub/Sub subscription of GCS notifications: projects/P/subscriptions/S"
    )
    p.add_argument("--scene_pattern", default="*.tif,*.tiff",
                   help="comma-separated globs on object names that are scenes (default *.tif,*.tiff)")
    p.add_argument("--object_prefix", default="gs://{bucket}/",
                   help="where notified objects are read: {bucket} is the notification's bucket "
                        "(default gs://{bucket}/; a local mirror or FUSE mount for development)")
    p.add_argument("--aoi", help="one area of interest: a vector file GDAL reads (any CRS) or "
                                 "west,south,east,north (EPSG:4326)")
    p.add_argument("--aoi_name", help="its name (default: the file's name)")
    p.add_argument("--regions", help="regions file (infra/regions.yaml): every region's AOI is watched")
    p.add_argument("--output", required=True, help="the scans' warehouse (as the batch scan's --output): each "
                                                   "window's rows are committed to its table")
    catalog.add_argument(p)
    p.add_argument("--window_minutes", type=float, default=10,
                   help="rows are committed once per window of this many minutes; error files are one per window")
    p.add_argument("--alerts_output", help="alerts as Parquet under this prefix (one file per AOI and window)")
    p.add_argument("--alerts_table", help="alerts to this BigQuery table, PROJECT:DATASET.TABLE")
    p.add_argument("--alerts_topic", help="alerts as JSON messages on this Pub/Sub topic: projects/P/topics/T")
    p.add_argument("--settle_minutes", type=float, default=30,
                   help="event time a tile's new observations wait for out-of-order scenes before alerting")
    p.add_argument("--history_days", type=float, default=365,
                   help="at start, tiles take their observations of this many days back from the scans table, so "
                        "that the first new scene of a place is compared with what was seen before it")
    queries.add_judging_arguments(p)
    scan_setup.add_bundle_arguments(p)
    sources.add_arguments(p, find=False)
    tiling.add_arguments(p, grid_default=UTM, tile_size=False)
    return p


def watched_aois(args: argparse.Namespace) -> list[aois.Aoi]:
    """The AOIs of ``--aoi`` and of every region of ``--regions``."""
    try:
        watched = [aois.load(args.aoi, args.aoi_name)] if args.aoi else []
        watched += aois.from_regions_file(args.regions) if args.regions else []
    except ValueError as error:
        raise UserError(str(error)) from None
    if not watched:
        raise UserError("no AOI: give --aoi or --regions")
    return watched


@dataclass(frozen=True)
class StreamPlan:
    """A streaming scan's flags, checked and resolved before any work."""

    args: argparse.Namespace
    beam_args: list[str]
    meta: BundleMeta
    watched: list[aois.Aoi]
    spec: tiling.TileSpec
    read: ReadOptions


class StreamScan(beam.PTransform):
    """Notifications (``PubsubMessage``) -> rows, alerts and outcomes (a dict of PCollections).

    The whole streaming logic, source and sinks apart, so that tests feed it from a TestStream.
    """

    def __init__(self, plan: StreamPlan) -> None:
        super().__init__()
        self.plan = plan

    def expand(self, messages: beam.PCollection) -> dict[str, beam.PCollection]:
        plan = self.plan
        args = plan.args
        patterns = [p.strip() for p in args.scene_pattern.split(",") if p.strip()]
        scenes = (messages
                  | "Scenes" >> beam.FlatMap(lambda m: [found] if (found := notified_scene(
                      m, patterns, args.object_prefix, args.product)) else [])
                  | "Dedupe" >> beam.ParDo(FirstNotification()))
        tiles = scenes | "Tiles" >> Tiles(plan.spec, plan.read, plan.watched)
        rows = tiles["tiles"] | "Predict" >> PredictTiles(args.bundle, plan.meta, args.batch_size,
                                                          weather_one=args.weather_one)
        history = (messages.pipeline
                   | "Start" >> beam.Create([None])
                   | "ReadHistory" >> beam.ParDo(ReadHistory(Warehouse(args.output, args.catalog),
                                                             [aoi.name for aoi in plan.watched], args.history_days)))
        alerts = (rows["rows"]
                  | "KeyByTile" >> beam.Map(keyed_by_tile)
                  | "TileAlerts" >> beam.ParDo(TileAlerts(args.settle_minutes, args.min_clear_fraction,
                                                          args.highest_probability),
                                               beam.pvalue.AsMultiMap(history)))
        outcomes = (tiles["outcomes"], rows["outcomes"]) | "AllOutcomes" >> beam.Flatten()
        return {"rows": rows["rows"], "alerts": alerts, "outcomes": outcomes}


def check(args: argparse.Namespace, beam_args: Sequence[str]) -> None:
    """Refuse, before any work, what would fail once the pipeline runs (a Pub/Sub or BigQuery name their
    clients refuse: Beam's own parsers judge them) or run without a word as nothing useful (a runner that does
    not stream, a window of no time)."""
    if PipelineOptions(list(beam_args)).view_as(StandardOptions).runner == LOCAL_RUNNER:
        raise UserError(f"--runner {LOCAL_RUNNER}: it does not stream (the run would end at once, having read "
                        f"nothing); leave --runner out to stream locally on Beam's {STREAMING_LOCAL_RUNNER}")
    for flag, parse_name in (("subscription", parse_subscription), ("alerts_topic", parse_topic),
                             ("alerts_table", parse_table_reference)):
        value = getattr(args, flag)
        try:
            if value:
                parse_name(value)
        except ValueError as error:
            raise UserError(f"--{flag} {value}: {error}") from None
    seconds = args.window_minutes * 60
    if not seconds >= 1:  # Beam's windows are whole seconds: less would be none
        raise UserError(f"--window_minutes {args.window_minutes:g}: must be at least a second (1/60)")
    if abs(seconds - round(seconds)) > 1e-6:  # Beam would round them, to windows other than asked
        raise UserError(f"--window_minutes {args.window_minutes:g}: windows are whole seconds, and this is "
                        f"{seconds:g}; give a whole number of seconds in minutes (e.g. {round(seconds) / 60:g})")
    for flag in ("settle_minutes", "history_days"):
        if getattr(args, flag) < 0:
            raise UserError(f"--{flag} {getattr(args, flag):g}: must be 0 or more")


def prepare(argv: Sequence[str] | None) -> StreamPlan:
    """Flags -> a :class:`StreamPlan`, checked before any work."""
    args, beam_args = parse(build_parser(), argv)
    check(args, beam_args)
    Warehouse(args.output, args.catalog).check_own_folder("--output")
    scan_setup.check_batch_size(args)
    queries.check_judging_arguments(args)
    meta = read_metadata(args.bundle)
    watched = watched_aois(args)
    spec = scan_setup.tile_spec(args, meta, watched[0].geometry)
    if meta.domain.gsd_m and spec.grid != NATIVE:
        for aoi in watched[1:]:
            scan_setup.check_resolution(spec, aoi.geometry, meta.domain.gsd_m)
    return StreamPlan(args, beam_args, meta, watched, spec, sources.read_options(args, meta.bands))


def streaming_options(beam_args: Sequence[str], save_main_session: bool = True) -> PipelineOptions:
    """The pipeline's options: streaming, locally (no ``--runner``) on a runner that streams."""
    options = pipeline_options(beam_args, save_main_session, local_runner=STREAMING_LOCAL_RUNNER)
    options.view_as(StandardOptions).streaming = True
    return options


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> None:
    """Build and run the streaming scan until cancelled (on Dataflow: until drained or cancelled)."""
    plan = prepare(argv)
    options = streaming_options(plan.beam_args, save_main_session)
    with beam.Pipeline(options=options) as pipeline:
        messages = pipeline | "Notifications" >> beam.io.ReadFromPubSub(subscription=plan.args.subscription,
                                                                       with_attributes=True)
        write(messages | "StreamScan" >> StreamScan(plan), plan.args, plan.meta)


def write(streams: dict, args: argparse.Namespace, meta: BundleMeta) -> None:
    """The sinks the flags ask for: rows into the scans table, one commit per window; alerts; error lines."""
    warehouse = Warehouse(args.output, args.catalog)
    facts = {"pipeline": "stream", "run_id": publishing.new_run_id(), "bundle": args.bundle,
             "model_version": meta.version}
    _ = (streams["rows"]
         | "RowsToParquet" >> sinks.WindowedFiles(schema.COLUMNS, lambda r: f"{r['scan_date'].isoformat()}/{r['aoi']}",
                                                  sinks.scan_file(warehouse), args.window_minutes)
         | "FilesOfWindow" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
         | "CommitWindow" >> beam.ParDo(CommitWindows(warehouse, facts)))
    records = streams["alerts"] | "AlertRecords" >> beam.Map(sinks.alert_record)
    if args.alerts_output:
        _ = records | "AlertsToParquet" >> sinks.WindowedFiles(
            schema.ALERT_COLUMNS, lambda r: f"aoi={r['aoi']}", sinks.alert_file(args.alerts_output), args.window_minutes
        )
    if args.alerts_table:
        _ = (records
             | "AlertsForBigQuery" >> beam.Map(sinks.bigquery_row)
             | "AlertsToBigQuery" >> beam.io.WriteToBigQuery(
                 args.alerts_table, method=beam.io.WriteToBigQuery.Method.STORAGE_WRITE_API,
                 create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
                 write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND, triggering_frequency=5))
    if args.alerts_topic:
        _ = (records
             | "AlertMessages" >> beam.Map(lambda r: json.dumps(sinks.bigquery_row(r), sort_keys=True).encode())
             | "AlertsToPubSub" >> beam.io.WriteToPubSub(args.alerts_topic))
    problems = streams["outcomes"] | "CountOutcomes" >> beam.ParDo(sinks.CountOutcomes())
    _ = (problems
         | "WindowErrors" >> sinks.windows(args.window_minutes)
         | "OneKey" >> beam.Map(lambda o: (None, o))
         | "GroupErrors" >> beam.GroupByKey()
         | "WriteErrors" >> beam.ParDo(sinks.WriteErrors(warehouse.path("errors"))))


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    run(argv)


if __name__ == "__main__":
    main()
