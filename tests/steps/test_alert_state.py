"""The streaming scan's per-tile alert state, fed by a TestStream as time really passes: rows that arrive
out of order inside the settle time are judged together, a re-delivered row changes nothing, a late row
judged after its tile's timer fired changes an alert's state once, and a tile's history from the table
counts its alerts as already emitted. The oracle is the batch rules on each tile's whole history."""

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.transforms.window import TimestampedValue

from pipelines.analysis import rules
from pipelines.steps.alert_state import ReadHistory, TileAlerts, keyed_by_tile
from pipelines.store.catalog import Warehouse
from tests import tables
from tests.analysis.test_rules_and_queries import D1, D2, D3, D4, PRIMARY, row

CLEARED = ["clear", "agriculture"]
SETTLE_MINUTES = 2  # 120 s of event time
EMITTED: list[rules.Alert] = []


def observed(tile, date, labels, scene="s"):
    return tables.complete(row(tile, f"{scene}{date:%m%d}", labels), "a", date)


def collect(alert):
    EMITTED.append(alert)


def stream(events, known=()):
    """The alerts :class:`TileAlerts` emits for ``events`` (a TestStream of rows), in emission order."""
    EMITTED.clear()
    options = PipelineOptions(["--runner", "BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        history = pipeline | "Known" >> beam.Create([keyed_by_tile(r) for r in known])
        _ = (pipeline
             | events
             | beam.Map(keyed_by_tile)
             | beam.ParDo(TileAlerts(SETTLE_MINUTES), beam.pvalue.AsMultiMap(history))
             | beam.Map(collect))
    return [(a.tile_id, a.first_detected, a.confidence, a.status) for a in EMITTED]


def test_out_of_order_rows_inside_the_settle_time_are_judged_together_and_late_ones_change_the_state_once():
    events = (test_stream.TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(observed(1, D1, PRIMARY), 60)])
              .advance_watermark_to(600)  # D1's timer (180) fired: intact, nothing to emit
              .add_elements([TimestampedValue(observed(1, D3, CLEARED), 660)])
              .advance_watermark_to(700)  # time passes, but less than the settle time since D3 arrived
              .add_elements([TimestampedValue(observed(1, D2, CLEARED), 710)])
              .advance_watermark_to(1000)  # one flush (830): D2 detects, D3 confirms
              .add_elements([TimestampedValue(observed(1, D3, CLEARED), 1010)])  # D3 delivered again
              .advance_watermark_to(1300)
              .add_elements([TimestampedValue(observed(1, D4, PRIMARY), 1310)])  # forest again: retracted
              .advance_watermark_to_infinity())
    assert stream(events) == [("T1", D2, "highest", "active"), ("T1", D2, "highest", "retracted")]
    # The batch rules on the whole history agree with the last state emitted.
    history = rules.observations([observed(1, d, labels) for d, labels in
                                  ((D1, PRIMARY), (D2, CLEARED), (D3, CLEARED), (D4, PRIMARY))])
    [batch] = rules.alerts(history)
    assert EMITTED[-1] == batch


def test_a_row_that_arrives_after_its_tiles_timer_fired_is_judged_then_and_tiles_keep_their_own_state():
    """A row later than the settle time still corrects the state, as a second emission of the same alert.
    Tiles 4 and 5 see the same dates in the other order: only tile 4 lost its forest."""
    events = (test_stream.TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(observed(2, D1, PRIMARY), 60),
                             TimestampedValue(observed(2, D2, CLEARED), 70),
                             TimestampedValue(observed(4, D1, PRIMARY), 80),
                             TimestampedValue(observed(5, D1, CLEARED), 80)])
              .advance_watermark_to(600)  # flushed: low on D2
              .add_elements([TimestampedValue(observed(2, D3, CLEARED), 610),
                             TimestampedValue(observed(4, D2, CLEARED), 610),
                             TimestampedValue(observed(5, D2, PRIMARY), 610)])
              .advance_watermark_to_infinity())
    assert sorted(stream(events)) == [("T2", D2, "highest", "active"), ("T2", D2, "low", "active"),
                                      ("T4", D2, "low", "active")]
    assert [a.confidence for a in EMITTED if a.tile_id == "T2"] == ["low", "highest"]


@pytest.mark.parametrize(("new", "expected"), [
    (None, []),  # the same D2 row again: the table's alert is not emitted anew
    (CLEARED, [("T3", D2, "highest", "active")]),  # D3 confirms the table's alert
])
def test_a_tiles_history_from_the_table_counts_its_alerts_as_emitted(new, expected):
    known = [observed(3, D1, PRIMARY), observed(3, D2, CLEARED)]
    arriving = observed(3, D3, new) if new else observed(3, D2, CLEARED, scene="t")
    events = (test_stream.TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(arriving, 60)])
              .advance_watermark_to_infinity())
    assert stream(events, known) == expected


def test_a_tile_watched_by_two_aois_has_a_state_in_each():
    """Overlapping AOIs share tiles (and alert ids, a hash of tile and date): each AOI's alert is emitted."""
    rows = [tables.complete(row(6, f"s{d:%m%d}", labels), aoi, d)
            for aoi in ("a", "b") for d, labels in ((D1, PRIMARY), (D2, CLEARED))]
    events = (test_stream.TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(r, 60) for r in rows])
              .advance_watermark_to_infinity())
    assert stream(events) == [("T6", D2, "low", "active")] * 2
    assert sorted(a.aoi for a in EMITTED) == ["a", "b"]


def test_the_history_a_stream_starts_from_is_the_watched_aois_last_days(tmp_path):
    today = dt.date.today()
    first, edge, old = today - dt.timedelta(days=3), today - dt.timedelta(days=10), today - dt.timedelta(days=11)
    warehouse = Warehouse(str(tmp_path))
    assert list(ReadHistory(warehouse, ["a"], days=10).process(None)) == []  # no catalog yet: nothing,
    assert not any(tmp_path.iterdir())  # and none made by reading
    tables.write_scans(tmp_path, {("a", d): [row(7, f"s{d:%m%d}", PRIMARY)] for d in (first, edge, old)}
                       | {("b", first): [row(8, "s", PRIMARY)], ("c", first): [row(9, "s", PRIMARY)]})
    found = list(ReadHistory(warehouse, ["a", "b"], days=10).process(None))
    assert sorted((key, r["scan_date"]) for key, r in found) == [("a|T7", edge), ("a|T7", first), ("b|T8", first)]


def test_a_scene_read_again_replaces_its_earlier_row_as_a_batch_rescan_does():
    """D2's scene is read again (re-uploaded, a new generation) with a surer answer: its new row replaces the
    old, so the confirmed alert becomes ``highest``, as the batch rules on the re-scanned partition say.
    Kept beside the old one, the old row would win the tie (same date and scene) and nothing would change."""
    unsure = tables.complete(row(8, "s0615", CLEARED, agriculture=0.5), "a", D2)
    # read again by a newer bundle (whose version sorts first: rows of one settle time are taken in content
    # order, so the old row, were it still pending, would win)
    sure = {**tables.complete(row(8, "s0615", CLEARED, agriculture=0.95), "a", D2), "model_version": "0a1b2c3d"}
    events = (test_stream.TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(observed(8, D1, PRIMARY), 60), TimestampedValue(unsure, 61),
                             TimestampedValue(tables.complete(row(8, "s0701", CLEARED, agriculture=0.95), "a", D3),
                                          62)])
              .advance_watermark_to(600)  # flushed: high (0.5 on D2)
              .add_elements([TimestampedValue(sure, 610)])
              .advance_watermark_to_infinity())  # flushed: highest (0.95 on both)
    assert stream(events) == [("T8", D2, "high", "active"), ("T8", D2, "highest", "active")]
    [batch] = rules.alerts(rules.observations([observed(8, D1, PRIMARY), sure, tables.complete(
        row(8, "s0701", CLEARED, agriculture=0.95), "a", D3)]))
    assert EMITTED[-1] == batch
