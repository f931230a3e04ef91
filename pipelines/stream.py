"""Streaming scan: label each new scene's tiles minutes after it lands, and raise alerts as they happen.

    python -m pipelines.scan --streaming --subscription projects/P/subscriptions/new-scenes \
        --regions infra/regions.yaml --bundle gs://B/bundles/v4 --output gs://B/scans \
        --bigquery_table P:planet_tiles.tile_labels --alerts_table P:planet_tiles.alerts \
        --runner DataflowRunner --project P --region us-central1 --temp_location gs://B/tmp
    (or: planet-tiles stream ...)

Scenes arrive as Cloud Storage ``OBJECT_FINALIZE`` notifications on Pub/Sub; objects that are not
scenes (``--scene_pattern``) are ignored, and a notification seen before (same object and generation)
is dropped. Each scene's tiles inside the configured AOIs (``--aoi`` or every region of ``--regions``)
go through the batch scan's own steps (windowed reads, the bundle's model via RunInference,
thresholds) and come out as the batch scan's rows, with ``aoi`` and ``scan_date`` (the acquisition
date, UTC) as columns. Rows go to BigQuery (Storage Write API) and/or Hive-partitioned Parquet under
``--output`` (one file per AOI, date and ``--window_minutes`` window), so that ``planet-tiles report`` and
the queries read batch and streaming output alike.

Alerts use the batch rules (:mod:`pipelines.analysis`) on per-tile state (Beam state and timers, keyed by
AOI and tile, checkpointed by Dataflow): each tile keeps its best observation per date, and new
observations wait ``--settle_minutes`` of event time (Pub/Sub publish time) so that scenes of one place
arriving out of order are put in acquisition order before the rule runs. An alert is emitted once per
tile and date. Bad scenes and tiles become error lines (``OUTPUT/errors-stream-*.jsonl``) and counters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import hashlib
import json
import logging
import posixpath
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.trigger import AccumulationMode, AfterCount, AfterWatermark
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration

from pipelines import analysis, schema, storage
from pipelines.accounting import FAILED, SKIPPED, WRITTEN, outcome
from pipelines.grid import WebMercatorGrid, geojson_geometry, parse_region, scene_footprint, zoom_for_resolution
from pipelines.scan import OUTCOMES, ReadTiles, ToRow
from pipelines.scenes import SceneReader, SceneSource, iter_blocks, parse_band_order, scene_id_from_uri

LATENESS_DAYS = 7  # how late a row or alert may come for its window's files (Pub/Sub keeps a week)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles stream", description=__doc__.split("\n\n")[0])
    p.add_argument("--subscription", required=True, help="Pub/Sub subscription of GCS notifications: projects/P/subscriptions/S")
    p.add_argument("--scene_pattern", default="*.tif,*.tiff",
                   help="comma-separated globs on object names that are scenes (default *.tif,*.tiff)")
    p.add_argument("--object_prefix", default="gs://{bucket}/",
                   help="where notified objects are read: {bucket} is the notification's bucket "
                        "(default gs://{bucket}/; a local mirror or FUSE mount for development)")
    p.add_argument("--aoi", help="one area of interest: GeoJSON file or west,south,east,north (EPSG:4326)")
    p.add_argument("--aoi_name", help="its name (default: the GeoJSON file's name)")
    p.add_argument("--regions", help="regions file (infra/regions.yaml): every region's AOI is watched")
    p.add_argument("--bundle", required=True, help="model bundle folder, local or gs://")
    p.add_argument("--zoom", type=int, help="WebMercatorQuad zoom (default: closest to the bundle's resolution)")
    p.add_argument("--min_valid_fraction", type=float, default=0.5)
    p.add_argument("--batch_size", type=int, default=64, help="tiles per model call")
    p.add_argument("--band_order", help="source band roles, e.g. blue,green,red,nir (default: colour interpretation)")
    p.add_argument("--tiles_per_task", type=int, default=64, help="tiles read together from one open scene")
    p.add_argument("--output", help="Parquet prefix (Hive partitions, as the batch scan) and error lines")
    p.add_argument("--window_minutes", type=float, default=10, help="Parquet and error files: one per window")
    p.add_argument("--bigquery_table", help="rows to this table, PROJECT:DATASET.TABLE (Storage Write API)")
    p.add_argument("--alerts_output", help="alerts as Parquet under this prefix (one file per AOI and window)")
    p.add_argument("--alerts_table", help="alerts to this BigQuery table, PROJECT:DATASET.TABLE")
    p.add_argument("--alerts_topic", help="alerts as JSON messages on this Pub/Sub topic: projects/P/topics/T")
    p.add_argument("--settle_minutes", type=float, default=30,
                   help="event time a tile's new observations wait for out-of-order scenes before alerting")
    return p


# --- Scenes from notifications ------------------------------------------------------------------------

def notified_scene(message, patterns: Sequence[str], object_prefix: str) -> tuple[str, SceneSource] | None:  # noqa: ANN001
    """A GCS notification (``PubsubMessage``) -> ``(version, scene)``, or ``None`` if it announces no scene.

    Only ``OBJECT_FINALIZE`` events of objects matching ``patterns`` are scenes. ``version`` is the
    object and its generation: a re-uploaded scene is new, a repeated notification is not. The scene id
    is the batch scan's (the file name's stem), so both write the same rows.
    """
    attributes = message.attributes or {}
    if attributes.get("eventType", "OBJECT_FINALIZE") != "OBJECT_FINALIZE":
        return None
    payload = json.loads(message.data.decode("utf-8")) if message.data else {}
    bucket = payload.get("bucket") or attributes.get("bucketId")
    name = payload.get("name") or attributes.get("objectId")
    generation = str(payload.get("generation") or attributes.get("objectGeneration") or "")
    if not bucket or not name or not any(fnmatch.fnmatch(posixpath.basename(name), p) for p in patterns):
        return None
    uri = object_prefix.format(bucket=bucket) + name
    return f"gs://{bucket}/{name}#{generation}", SceneSource(uri=uri, scene_id=scene_id_from_uri(uri))


class FirstNotification(beam.DoFn):
    """Keyed by scene version (object and generation): passes the first notification of each only.

    The state is cleared ``LATENESS_DAYS`` after the first one: Pub/Sub keeps (and so redelivers)
    messages for at most that long, so state does not grow with every scene ever seen.
    """

    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())
    EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)

    def process(self, keyed: tuple, timestamp=beam.DoFn.TimestampParam, seen=beam.DoFn.StateParam(SEEN),  # noqa: ANN001
                expire=beam.DoFn.TimerParam(EXPIRE)) -> Iterator[SceneSource]:
        if seen.read():
            beam.metrics.Metrics.counter("planet_tiles_stream", "duplicate_notifications").inc()
            return
        seen.write(True)
        expire.set(timestamp + Duration(seconds=LATENESS_DAYS * 86400))
        yield keyed[1]

    @on_timer(EXPIRE)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)) -> Iterable:  # noqa: ANN001
        seen.clear()
        return []


# --- Tiles of the watched AOIs ------------------------------------------------------------------------

def watched_aois(args: argparse.Namespace) -> dict[str, str]:
    """AOI name -> AOI text (GeoJSON or bbox) from ``--aoi`` and ``--regions``."""
    aois = {}
    if args.aoi:
        from pipelines.scan import aoi_name

        aois[aoi_name(args)] = args.aoi
    if args.regions:
        import yaml

        regions = yaml.safe_load(storage.read_text(args.regions))["regions"]
        for name, region in regions.items():
            aois[name] = json.dumps(region["aoi"])
    if not aois:
        raise SystemExit("no AOI: give --aoi or --regions")
    return aois


class EnumerateAoiTiles(beam.DoFn):
    """Scene -> ``(source, tiles, context)`` blocks for every watched AOI its footprint touches."""

    def __init__(self, aois: dict[str, str], zoom: int, version: str, band_order: str | None,
                 tiles_per_task: int) -> None:
        self.aois, self.zoom, self.version = aois, zoom, version
        self.band_order, self.tiles_per_task = band_order, tiles_per_task

    def setup(self) -> None:
        self.regions = {name: _region(text) for name, text in self.aois.items()}
        self.grid = WebMercatorGrid(self.zoom)

    def process(self, source: SceneSource, timestamp=beam.DoFn.TimestampParam) -> Iterator:  # noqa: ANN001
        try:
            with SceneReader(source, parse_band_order(self.band_order)) as reader:
                footprint = scene_footprint(reader.crs, reader.transform, reader.shape[1], reader.shape[0])
                acquired = reader.acquired
        except Exception as error:  # noqa: BLE001 - a bad scene is an error line; the stream goes on
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri,
                                                             reason=f"scene: {error}"))
            return
        day = (dt.datetime.fromisoformat(acquired).astimezone(dt.timezone.utc).date() if acquired
               else dt.datetime.now(dt.timezone.utc).date()).isoformat()
        touched = False
        for name, region in self.regions.items():
            inside = footprint.intersection(region)
            if inside.is_empty:
                continue
            touched = True
            context = {"aoi": name, "scan_date": day, "scan_id": f"{name}:{day}:{self.version}",
                       "event_time": float(timestamp)}
            tiles = [self.grid.tile(x, y) for x, y in self.grid.tiles(inside)]
            for block in iter_blocks(tiles, self.tiles_per_task):
                yield source, block, context
        if not touched:
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(SKIPPED, source.scene_id, source.uri,
                                                             reason="outside: no watched AOI"))


def _region(text: str):  # noqa: ANN202 - shapely geometry
    return geojson_geometry(json.loads(text)) if text.lstrip().startswith("{") else parse_region(text)


# --- Alerts from per-tile state -----------------------------------------------------------------------

class TileAlerts(beam.DoFn):
    """Keyed by ``aoi|tile_id``: keeps the tile's observations and emits each alert once.

    New rows wait in ``pending`` until the event-time timer (last arrival + settle) fires, then join the
    tile's history (the best row per date, as :func:`pipelines.analysis.observations` chooses) and the
    batch rule runs over the whole history; alerts not emitted before are emitted now.
    """

    PENDING = BagStateSpec("pending", PickleCoder())
    HISTORY = ReadModifyWriteStateSpec("history", PickleCoder())
    EMITTED = ReadModifyWriteStateSpec("emitted", PickleCoder())
    SETTLE = TimerSpec("settle", TimeDomain.WATERMARK)

    def __init__(self, settle_minutes: float) -> None:
        self.settle = Duration(seconds=round(settle_minutes * 60))

    def process(self, keyed: tuple, timestamp=beam.DoFn.TimestampParam,  # noqa: ANN001
                pending=beam.DoFn.StateParam(PENDING), settle=beam.DoFn.TimerParam(SETTLE)) -> Iterable:
        pending.add(keyed[1])
        settle.set(timestamp + self.settle)
        return []

    @on_timer(SETTLE)
    def flush(self, pending=beam.DoFn.StateParam(PENDING), history=beam.DoFn.StateParam(HISTORY),  # noqa: ANN001
              emitted=beam.DoFn.StateParam(EMITTED)) -> Iterator[analysis.Alert]:
        rows = (history.read() or []) + list(pending.read())
        pending.clear()
        best = analysis.observations(rows)
        kept = {(o.scan_date, o.scene_id) for o in best}
        history.write([r for r in rows if (r["scan_date"], r["scene_id"]) in kept])
        done = set(emitted.read() or [])
        for alert in analysis.alerts(best):
            if alert.after_date not in done:
                done.add(alert.after_date)
                yield alert
        emitted.write(sorted(done))


def _for_alerts(row: dict) -> tuple[str, dict]:
    """A row as :func:`pipelines.analysis.observations` reads it, keyed by AOI and tile."""
    return f"{row['aoi']}|{row['tile_id']}", {**row, "scan_date": dt.date.fromisoformat(row["scan_date"])}


# --- Sinks --------------------------------------------------------------------------------------------

def bigquery_row(row: dict) -> dict:
    """A scan row or alert record as BigQuery's JSON rows want it (GEOGRAPHY as WKT, dates and times as
    ISO text)."""
    import shapely

    return {key: shapely.from_wkb(value).wkt if key == "geometry"
            else value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
            for key, value in row.items()}


def alert_record(alert: analysis.Alert) -> dict:
    return {c.name: getattr(alert, c.name) for c in schema.ALERT_COLUMNS}


class WriteWindowParquet(beam.DoFn):
    """``(partition, rows)`` of one window pane -> one Parquet file; its name is fixed by the partition,
    the window and the pane, so a retried bundle rewrites the same file instead of adding one."""

    def __init__(self, prefix: str, columns: Sequence[schema.Column]) -> None:
        self.prefix, self.columns = prefix, tuple(columns)

    def process(self, grouped: tuple, window=beam.DoFn.WindowParam,  # noqa: ANN001
                pane=beam.DoFn.PaneInfoParam) -> Iterator[str]:  # noqa: ANN001
        partition, rows = grouped
        rows = sorted(rows, key=lambda r: (r.get("tile_id"), r.get("scene_id", ""), str(r.get("after_date", ""))))
        digest = hashlib.sha256(partition.encode()).hexdigest()[:8]
        path = storage.join(self.prefix, partition, f"part-stream-{_pane_name(window, pane)}-{digest}.parquet")
        storage.write_bytes(path, schema.parquet_bytes(rows, self.columns))
        yield path


class WindowedFiles(beam.PTransform):
    """Rows -> fixed windows -> one Parquet file per partition and window."""

    def __init__(self, prefix: str, columns: Sequence[schema.Column], partition, minutes: float) -> None:  # noqa: ANN001
        super().__init__()
        self.prefix, self.columns, self.partition, self.minutes = prefix, columns, partition, minutes

    def expand(self, rows):  # noqa: ANN001, ANN201
        return (rows
                | "Window" >> windows(self.minutes)
                | "ByPartition" >> beam.Map(lambda r: (self.partition(r), r))
                | "Group" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WriteWindowParquet(self.prefix, self.columns)))


def windows(minutes: float) -> beam.WindowInto:
    """Fixed windows whose late data (alerts leave their timers after the watermark has passed their
    window; Pub/Sub redeliveries) fire extra panes, written as files of their own, never dropped."""
    return beam.WindowInto(beam.window.FixedWindows(round(minutes * 60)), trigger=AfterWatermark(late=AfterCount(1)),
                           accumulation_mode=AccumulationMode.DISCARDING,
                           allowed_lateness=Duration(seconds=LATENESS_DAYS * 86400))


def _pane_name(window, pane) -> str:  # noqa: ANN001
    return window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S") + f"-{pane.index}"



class WriteErrors(beam.DoFn):
    """Failed and skipped outcomes of one window -> ``errors-stream-<window>.jsonl`` (and counters)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def process(self, grouped: tuple, window=beam.DoFn.WindowParam,  # noqa: ANN001
                pane=beam.DoFn.PaneInfoParam) -> Iterator[str]:  # noqa: ANN001
        lines = sorted(json.dumps(o, sort_keys=True) for o in grouped[1])
        path = storage.join(self.prefix, f"errors-stream-{_pane_name(window, pane)}.jsonl")
        storage.write_text(path, "\n".join(lines) + "\n")
        yield path


class CountOutcomes(beam.DoFn):
    def process(self, record: dict) -> Iterator[dict]:
        beam.metrics.Metrics.counter("planet_tiles_stream", record["status"]).inc()
        if record["status"] != WRITTEN:
            yield record


# --- The pipeline -------------------------------------------------------------------------------------

class StreamScan(beam.PTransform):
    """Notifications (``PubsubMessage``) -> rows, alerts and outcomes (a dict of PCollections).

    The whole streaming logic, source and sinks apart, so that tests feed it from a TestStream.
    """

    def __init__(self, args: argparse.Namespace, meta: dict, aois: dict[str, str], zoom: int) -> None:
        super().__init__()
        self.args, self.meta, self.aois, self.zoom = args, meta, aois, zoom

    def expand(self, messages):  # noqa: ANN001, ANN201
        from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

        from pipelines.inference import BundleModelHandler

        args = self.args
        patterns = [p.strip() for p in args.scene_pattern.split(",") if p.strip()]
        scenes = (messages
                  | "Scenes" >> beam.FlatMap(lambda m: [found] if (found := notified_scene(
                      m, patterns, args.object_prefix)) else [])
                  | "Dedupe" >> beam.ParDo(FirstNotification()))
        tasks = scenes | "EnumerateTiles" >> beam.ParDo(EnumerateAoiTiles(
            self.aois, self.zoom, self.meta["version"], args.band_order, args.tiles_per_task)).with_outputs(
            OUTCOMES, main="tasks")
        tiles = (tasks.tasks
                 | "SpreadTasks" >> beam.Reshuffle()
                 | "ReadTiles" >> beam.ParDo(ReadTiles(args, self.meta["bands"])).with_outputs(OUTCOMES, main="tiles"))
        handler = KeyedModelHandler(BundleModelHandler(args.bundle, args.batch_size))
        rows = (tiles.tiles
                | "RunInference" >> RunInference(handler)
                # Batching drops element timestamps: restore the notification's, which windows and the
                # alert timers run on.
                | "Restamp" >> beam.Map(lambda kv: beam.window.TimestampedValue(kv, kv[0]["event_time"]))
                | "ToRows" >> beam.ParDo(ToRow(self.meta, "")).with_outputs(OUTCOMES, main="rows"))
        alerts = (rows.rows
                  | "KeyByTile" >> beam.Map(_for_alerts)
                  | "TileAlerts" >> beam.ParDo(TileAlerts(args.settle_minutes)))
        outcomes = (tasks[OUTCOMES], tiles[OUTCOMES], rows[OUTCOMES]) | "AllOutcomes" >> beam.Flatten()
        return {"rows": rows.rows, "alerts": alerts, "outcomes": outcomes}


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> None:
    """Build and run the streaming scan until cancelled (on Dataflow: until drained or cancelled)."""
    from apache_beam.options.pipeline_options import StandardOptions

    from pipelines.options import pipeline_options
    from planet_model.bundle import read_metadata

    args, beam_args = build_parser().parse_known_args(argv)
    if not (args.output or args.bigquery_table):
        raise SystemExit("no sink: give --output (Parquet) and/or --bigquery_table")
    meta = read_metadata(args.bundle)
    aois = watched_aois(args)
    zoom = args.zoom or zoom_for_resolution(meta.get("resolution_m") or 4.77,
                                           _region(next(iter(aois.values()))).centroid.y)
    options = pipeline_options(beam_args, save_main_session)
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        messages = pipeline | "Notifications" >> beam.io.ReadFromPubSub(subscription=args.subscription,
                                                                       with_attributes=True)
        write(messages | "StreamScan" >> StreamScan(args, meta, aois, zoom), args)


def write(streams: dict, args: argparse.Namespace) -> None:
    """The sinks the flags ask for."""
    if args.output:
        _ = streams["rows"] | "RowsToParquet" >> WindowedFiles(
            args.output, schema.FILE_COLUMNS, lambda r: f"scan_date={r['scan_date']}/aoi={r['aoi']}",
            args.window_minutes)
    if args.bigquery_table:
        _ = (streams["rows"]
             | "RowsForBigQuery" >> beam.Map(bigquery_row)
             | "RowsToBigQuery" >> beam.io.WriteToBigQuery(
                 args.bigquery_table, method=beam.io.WriteToBigQuery.Method.STORAGE_WRITE_API,
                 create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
                 write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND, triggering_frequency=5))
    records = streams["alerts"] | "AlertRecords" >> beam.Map(alert_record)
    if args.alerts_output:
        _ = records | "AlertsToParquet" >> WindowedFiles(
            args.alerts_output, schema.ALERT_COLUMNS, lambda r: f"aoi={r['aoi']}", args.window_minutes)
    if args.alerts_table:
        _ = (records
             | "AlertsForBigQuery" >> beam.Map(bigquery_row)
             | "AlertsToBigQuery" >> beam.io.WriteToBigQuery(
                 args.alerts_table, method=beam.io.WriteToBigQuery.Method.STORAGE_WRITE_API,
                 create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
                 write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND, triggering_frequency=5))
    if args.alerts_topic:
        _ = (records
             | "AlertMessages" >> beam.Map(lambda r: json.dumps(bigquery_row(r), sort_keys=True).encode())
             | "AlertsToPubSub" >> beam.io.WriteToPubSub(args.alerts_topic))
    problems = streams["outcomes"] | "CountOutcomes" >> beam.ParDo(CountOutcomes())
    if args.output:
        _ = (problems
             | "WindowErrors" >> windows(args.window_minutes)
             | "OneKey" >> beam.Map(lambda o: (None, o))
             | "GroupErrors" >> beam.GroupByKey()
             | "WriteErrors" >> beam.ParDo(WriteErrors(args.output)))


def main(argv: Sequence[str] | None = None) -> None:
    logging.getLogger().setLevel(logging.INFO)
    run(argv)


if __name__ == "__main__":
    main()
