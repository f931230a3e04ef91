"""The streaming scan's window files on a real Beam TestStream run: one file per partition and window pane,
named so that no two windows share one."""

import datetime as dt

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipelines.analysis.rules import Alert
from pipelines.steps import sinks
from pipelines.store import schema


def _alert(tile: str) -> dict:
    day = dt.date(2026, 6, 1)
    return sinks.alert_record(Alert(f"id-{tile}", "a", tile, day, "s0", day, "s1", None, ("road",), 0.9, "low",
                                    None, "active", None, day, b"\x01", -55.0, -10.0, 1.0))


def test_windows_shorter_than_a_minute_write_a_file_each(tmp_path):
    """Windows of 30 s: rows 40 s apart are two windows starting in the same minute, each its own file
    (names to the minute would give both one name, the second replacing the first)."""
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    events = (TestStream().advance_watermark_to(0)
              .add_elements([TimestampedValue(_alert("T1"), 1)])
              .add_elements([TimestampedValue(_alert("T2"), 41)])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | events
             | sinks.WindowedFiles(schema.ALERT_COLUMNS, lambda r: "aoi=a", sinks.alert_file(str(tmp_path)), 0.5))
    files = sorted((tmp_path / "aoi=a").glob("*.parquet"))
    assert [f.name for f in files] == ["part-19700101T000000-0.parquet", "part-19700101T000030-0.parquet"]
    assert [pq.read_table(f)["tile_id"].to_pylist() for f in files] == [["T1"], ["T2"]]
