"""The streaming scan's sinks: windowed Parquet files (scan rows into the scans table's data folders,
committed per window by :class:`pipelines.steps.commits.CommitWindows`; alert records), error lines,
BigQuery rows.

Unbounded output goes into fixed windows; each window pane of each partition becomes one file whose
name is fixed by partition, window and pane, so a retried bundle rewrites it instead of adding one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence

import apache_beam as beam
import shapely
from apache_beam.transforms.trigger import AccumulationMode, AfterCount, AfterWatermark
from apache_beam.utils.timestamp import Duration

from pipelines.analysis import rules
from pipelines.steps.accounting import WRITTEN
from pipelines.steps.notifications import LATENESS_DAYS
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import storage


def bigquery_row(row: dict) -> dict:
    """A scan row or alert record as BigQuery's JSON rows want it (GEOGRAPHY as WKT, dates and times as
    ISO text)."""
    return {key: shapely.from_wkb(value).wkt if key == "geometry"
            else value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
            for key, value in row.items()}


def alert_record(alert: rules.Alert) -> dict:
    return {c.name: getattr(alert, c.name) for c in schema.ALERT_COLUMNS}


class WriteWindowParquet(beam.DoFn):
    """``(partition, rows)`` of one window pane -> one Parquet file at ``path(partition, pane name)`` (a name
    fixed by partition, window and pane, so a retried bundle rewrites the same file)."""

    def __init__(self, path: Callable[[str, str], str], columns: Sequence[schema.Column]) -> None:
        self.path, self.columns = path, tuple(columns)

    def process(self, grouped: tuple, window=beam.DoFn.WindowParam,  # noqa: ANN001
                pane=beam.DoFn.PaneInfoParam) -> Iterator[str]:  # noqa: ANN001
        partition, rows = grouped
        rows = sorted(rows, key=lambda r: (r.get("tile_id"), r.get("scene_id", ""), str(r.get("first_detected", ""))))
        path = self.path(partition, _pane_name(window, pane))
        storage.write_bytes(path, schema.parquet_bytes(rows, self.columns))
        yield path


class WindowedFiles(beam.PTransform):
    """Rows -> fixed windows -> one Parquet file per partition and window pane (the files' paths out)."""

    def __init__(self, columns: Sequence[schema.Column], partition: Callable[[dict], str],
                 path: Callable[[str, str], str], minutes: float) -> None:
        super().__init__()
        self.columns, self.partition, self.path, self.minutes = columns, partition, path, minutes

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (rows
                | "Window" >> windows(self.minutes)
                | "ByPartition" >> beam.Map(lambda r: (self.partition(r), r))
                | "Group" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WriteWindowParquet(self.path, self.columns)))


def scan_file(warehouse: Warehouse) -> Callable[[str, str], str]:
    """Where a window's scan rows of partition ``scan_date/aoi`` go: that partition's data folder."""
    def path(partition: str, pane: str) -> str:
        scan_date, aoi = partition.split("/", 1)
        digest = hashlib.sha256(partition.encode()).hexdigest()[:8]
        return storage.join(scans.data_folder(warehouse, scan_date, aoi), f"part-stream-{pane}-{digest}.parquet")

    return path


def alert_file(prefix: str) -> Callable[[str, str], str]:
    """Where a window's alert records of one AOI go: ``PREFIX/aoi=A/part-<pane>.parquet``."""
    return lambda partition, pane: storage.join(prefix, partition, f"part-{pane}.parquet")


def windows(minutes: float) -> beam.WindowInto:
    """Fixed windows whose late data (alerts leave their timers after the watermark has passed their
    window; Pub/Sub redeliveries) fire extra panes, written as files of their own, never dropped."""
    return beam.WindowInto(beam.window.FixedWindows(round(minutes * 60)), trigger=AfterWatermark(late=AfterCount(1)),
                           accumulation_mode=AccumulationMode.DISCARDING,
                           allowed_lateness=Duration(seconds=LATENESS_DAYS * 86400))


def _pane_name(window, pane) -> str:  # noqa: ANN001
    return window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S") + f"-{pane.index}"



class WriteErrors(beam.DoFn):
    """Failed and skipped outcomes of one window -> ``PREFIX/stream-<window>.jsonl`` (and counters)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def process(self, grouped: tuple, window=beam.DoFn.WindowParam,  # noqa: ANN001
                pane=beam.DoFn.PaneInfoParam) -> Iterator[str]:  # noqa: ANN001
        lines = sorted(json.dumps(o, sort_keys=True) for o in grouped[1])
        path = storage.join(self.prefix, f"stream-{_pane_name(window, pane)}.jsonl")
        storage.write_text(path, "\n".join(lines) + "\n")
        yield path


class CountOutcomes(beam.DoFn):
    def process(self, record: dict) -> Iterator[dict]:
        beam.metrics.Metrics.counter("planet_tiles_stream", record["status"]).inc()
        if record["status"] != WRITTEN:
            yield record
