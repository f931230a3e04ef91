"""The streaming scan on Beam's TestStream (DirectRunner): same rows and alert states as the batch scan and query.

One place seen five times: clear (June 1), overcast (June 15), clear again (July 1, unchanged), with
new clearings (July 20), and the clearings again (August 5, which confirms the alerts). Notifications
arrive out of order, one twice, with a broken scene and a file that is not a scene among them; the place
is split into two overlapping AOIs.
"""

import dataclasses
import datetime as dt
import glob
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely
import yaml
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue
from shapely.geometry import box, mapping

from pipelines import scan, stream
from pipelines.analysis import queries
from pipelines.geo.grid import scene_footprint
from pipelines.sources import synthetic
from pipelines.steps import sinks
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from tests import tables
from tests.conftest import RUNNER

ZOOM = 16
DATES = ["2026-06-01", "2026-06-15", "2026-07-01", "2026-07-20", "2026-08-05"]
MIN_VALID = 0.95  # tiles half off the scene are left out: half nodata is not what the test bundle learned


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    base = synthetic.SceneSpec(seed=43, width=1024, height=1024, acquired=f"{DATES[0]}T13:30:00+00:00",
                               cloud_probability=0.0, haze_probability=0.0)
    specs = {DATES[0]: base,
             DATES[1]: dataclasses.replace(base, acquired=f"{DATES[1]}T13:30:00+00:00", overcast=True),
             DATES[2]: dataclasses.replace(base, acquired=f"{DATES[2]}T13:30:00+00:00"),
             DATES[3]: synthetic.later(base, f"{DATES[3]}T13:30:00+00:00", disturbance_seed=4),
             DATES[4]: synthetic.later(base, f"{DATES[4]}T13:30:00+00:00", disturbance_seed=4)}
    paths = {d: synthetic.write_scene(s, root / "landing" / d)["scene"] for d, s in specs.items()}
    (root / "landing" / "broken").mkdir()
    (root / "landing" / "broken" / "synth_broken.tif").write_bytes(b"not a GeoTIFF")
    (root / "landing" / "notes.txt").write_text("not a scene")
    with rasterio.open(paths[DATES[0]]) as src:
        west, south, east, north = scene_footprint(src.crs, src.transform, src.width, src.height).bounds
    middle = (west + east) / 2
    regions = {"time_zone": "Etc/UTC", "regions": {
        "west": {"schedule": "0 6 * * 1", "aoi": mapping(box(west, south, middle + 0.002, north)),
                 "scan": {"bundle": "b", "output": "o"}},
        "east": {"schedule": "0 6 * * 1", "aoi": mapping(box(middle - 0.002, south, east, north)),
                 "scan": {"bundle": "b", "output": "o"}}}}
    (root / "regions.yaml").write_text(yaml.safe_dump(regions))
    return {"root": root, "paths": paths, "regions": root / "regions.yaml",
            "aois": {n: shapely.geometry.shape(r["aoi"]) for n, r in regions["regions"].items()}}


def notification(name, generation="1"):
    return PubsubMessage(json.dumps({"bucket": "landing", "name": name, "generation": generation}).encode(),
                         {"eventType": "OBJECT_FINALIZE", "bucketId": "landing", "objectId": name})


def relative(place, date):
    return str(Path(place["paths"][date]).relative_to(place["root"] / "landing"))


@pytest.fixture(scope="module")
def streamed(place, simple_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("stream")
    plan = stream.prepare(
        [
            "--subscription",
            "projects/my-forest-project/subscriptions/s",
            "--regions",
            str(place["regions"]),
            "--bundle",
            simple_bundle["path"],
            "--grid",
            "WebMercatorQuad",
            "--zoom",
            str(ZOOM),
            "--object_prefix",
            f"{place['root']}/{{bucket}}/",
            "--output",
            str(out / "rows"),
            "--alerts_output",
            str(out / "alerts"),
            "--window_minutes",
            "5",
            "--settle_minutes",
            "2",
            "--min_valid_fraction",
            str(MIN_VALID),
        ]
    )
    events = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(notification(relative(place, DATES[0])), 60)])
              .advance_watermark_to(600)
              # July 1 arrives before June 15 (out of order), a minute apart of event time as the watermark
              # passes between them, inside the 2-minute settle; July 1 twice; a broken scene; not a scene.
              .add_elements([TimestampedValue(notification(relative(place, DATES[2])), 660)])
              .advance_watermark_to(720)
              .add_elements([TimestampedValue(notification(relative(place, DATES[1])), 730),
                             TimestampedValue(notification(relative(place, DATES[2])), 740),
                             TimestampedValue(notification("broken/synth_broken.tif"), 750),
                             TimestampedValue(notification("notes.txt"), 760)])
              .advance_watermark_to(1200)
              .add_elements([TimestampedValue(notification(relative(place, DATES[3])), 1260)])
              .advance_watermark_to(1800)
              .add_elements([TimestampedValue(notification(relative(place, DATES[4])), 1860)])
              .advance_watermark_to(2400)
              .advance_watermark_to_infinity())
    options = PipelineOptions(["--runner", "BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        streams = pipeline | events | stream.StreamScan(plan)
        stream.write(streams, plan.args, plan.meta)
    alerts = [r for f in sorted(glob.glob(str(out / "alerts" / "**" / "*.parquet"), recursive=True))
              for r in pq.read_table(f).to_pylist()]
    return {"rows": tables.read_rows(out / "rows"), "alerts": alerts, "out": out}


@pytest.fixture(scope="module")
def batch(place, simple_bundle, tmp_path_factory):
    """The batch scan of the same scenes: one scan per AOI and acquisition date."""
    out = tmp_path_factory.mktemp("batch")
    for name, region in place["aois"].items():
        for date in DATES:
            scan.run([*RUNNER, "--aoi=" + ",".join(f"{v:.9f}" for v in region.bounds), "--aoi_name", name,
                      "--scenes", str(place["paths"][date]), "--bundle", simple_bundle["path"],
                      "--output", str(out), "--scan_date", date, "--grid", "WebMercatorQuad", "--zoom", str(ZOOM),
                      "--min_valid_fraction", str(MIN_VALID)])
    return {"rows": tables.read_rows(out), "scans": str(out)}


def key(row):
    return row["aoi"], str(row["scan_date"]), row["tile_id"], row["scene_id"]


def test_stream_rows_equal_the_batch_scan(streamed, batch):
    rows = {key(r): r for r in streamed["rows"]}
    assert len(rows) == len(streamed["rows"]), "a duplicate notification must not duplicate rows"
    assert rows.keys() == {key(r) for r in batch["rows"]}
    for row in batch["rows"]:
        mine = rows[key(row)]
        assert mine["labels"] == row["labels"] and mine["scan_id"] == row["scan_id"]
        assert mine["p_primary"] == row["p_primary"] and mine["geometry"] == row["geometry"]
    # One scene touching two AOIs gives rows for both; the tiles they share appear in each.
    assert {r["aoi"] for r in streamed["rows"]} == {"west", "east"}
    assert {str(r["scan_date"]) for r in streamed["rows"]} == set(DATES)


def test_stream_alerts_equal_the_batch_analysis(streamed, batch):
    """The stream's log of alert states ends where the batch query (BigQuery SQL in DuckDB) does: same ids,
    levels and statuses; each state is emitted once, and a confirmed alert was emitted as low first."""
    # A tile in both (overlapping) AOIs has one alert_id and a row per AOI.
    expected = {(r["aoi"], r["alert_id"]): r for r in queries.run(tables.connect(batch["scans"]), "alerts",
                                                      {"start_date": dt.date(2026, 1, 1),
                                                       "end_date": dt.date(2026, 12, 31)})}
    log = sorted(streamed["alerts"], key=lambda a: a["last_judged"])
    latest = {(a["aoi"], a["alert_id"]): a for a in log}
    assert latest.keys() == expected.keys()
    for alert_id, alert in latest.items():
        want = expected[alert_id]
        assert (alert["aoi"], alert["tile_id"], alert["first_detected"], alert["before_date"],
                alert["confidence"], alert["status"], alert["confirmed_date"]) == (
                want["aoi"], want["tile_id"], want["first_detected"], want["before_date"],
                want["confidence"], want["status"], want["confirmed_date"])
    states = [(a["aoi"], a["alert_id"], a["confidence"], a["status"]) for a in log]
    assert len(states) == len(set(states)), "each state of an alert is emitted once"
    # The cloudy scene between two clear ones: it is seen as cloudy and raises nothing; only the
    # scene with new clearings does, against the last cloud-free state (July 1).
    cloudy = [r for r in streamed["rows"] if str(r["scan_date"]) == DATES[1]]
    assert cloudy and all("cloudy" in r["labels"] for r in cloudy)
    first = {(a["aoi"], a["alert_id"]): a for a in reversed(log)}
    confirmed = [i for i, a in latest.items() if a["confidence"] != "low"]
    print(f"\nstream: {len(streamed['rows'])} rows, {len(latest)} alerts ({len(confirmed)} confirmed on "
          f"{DATES[4]}), {len(log)} alert states emitted")
    assert latest and {a["first_detected"].isoformat() for a in latest.values()} == {DATES[3]}
    assert {a["before_date"].isoformat() for a in latest.values()} == {DATES[2]}
    # The same clearings seen again confirm most alerts; each confirmed one was first emitted as low.
    assert len(confirmed) >= len(latest) / 2
    assert all(first[i]["confidence"] == "low" and first[i]["last_judged"].isoformat() == DATES[3]
               for i in confirmed)
    assert {latest[i]["confirmed_date"].isoformat() for i in confirmed} == {DATES[4]}


def test_stream_reports_the_broken_scene_and_goes_on(streamed):
    lines = [json.loads(line) for f in glob.glob(str(streamed["out"] / "rows" / "errors" / "stream-*.jsonl"))
             for line in open(f) if line.strip()]
    broken = [x for x in lines if x["scene_id"] == "synth_broken"]
    assert len(broken) == 1 and broken[0]["status"] == "failed" and broken[0]["reason"].startswith("scene:")
    assert not any("notes" in x["uri"] for x in lines)


def test_bigquery_alert_rows_match_the_table_schema(streamed):
    from pipelines.store import schema

    record = streamed["alerts"][0]
    row = sinks.bigquery_row(record)
    assert set(row) == {c.name for c in schema.ALERT_COLUMNS}
    assert shapely.from_wkt(row["geometry"]).equals(shapely.from_wkb(record["geometry"]))
    json.dumps(row)  # everything is JSON: dates and times as ISO text


def test_each_window_is_one_commit_that_names_the_bundle(streamed, simple_bundle):
    """The stream's rows reach the table window by window, one append each, and each commit names the bundle,
    so that ``report`` finds the model card when the newest rows were streamed."""
    warehouse = Warehouse(str(streamed["out"] / "rows"))
    commits = scans.commits(warehouse)
    assert commits and all(c.operation == "append" and c.facts["pipeline"] == "stream" for c in commits)
    assert {c.facts["bundle"] for c in commits} == {simple_bundle["path"]}
    windows = [c.facts["window"] for c in commits]
    assert len(windows) == len(set(windows)), "one commit per window pane"
    written = {p for c in commits for p in c.partitions}
    assert written == {(str(r["scan_date"]), r["aoi"]) for r in streamed["rows"]}
    assert scans.latest_bundle(warehouse) == simple_bundle["path"]


def test_a_stream_started_over_earlier_scans_starts_from_them(place, streamed, simple_bundle, tmp_path):
    """A stream started over a table that holds the first three dates (as earlier scans left it) and then
    told of the last two scenes raises the same alerts, in the same states, as the stream that saw all
    five: a tile's history comes from the table's snapshot, not only from what the stream saw itself."""
    out = tmp_path / "rows"
    earlier = {}
    for row in streamed["rows"]:
        if str(row["scan_date"]) in DATES[:3]:
            earlier.setdefault((row["aoi"], row["scan_date"]), []).append(row)
    tables.write_scans(out, earlier)
    plan = stream.prepare([
        "--subscription", "projects/my-forest-project/subscriptions/s", "--regions", str(place["regions"]),
        "--bundle", simple_bundle["path"], "--grid", "WebMercatorQuad", "--zoom", str(ZOOM),
        "--object_prefix", f"{place['root']}/{{bucket}}/", "--output", str(out),
        "--alerts_output", str(tmp_path / "alerts"), "--window_minutes", "5", "--settle_minutes", "2",
        "--min_valid_fraction", str(MIN_VALID)])
    events = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(notification(relative(place, DATES[3])), 60)])
              .advance_watermark_to(600)
              .add_elements([TimestampedValue(notification(relative(place, DATES[4])), 660)])
              .advance_watermark_to(1200)
              .advance_watermark_to_infinity())
    options = PipelineOptions(["--runner", "BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        stream.write(pipeline | events | stream.StreamScan(plan), plan.args, plan.meta)
    log = sorted((r for f in sorted(glob.glob(str(tmp_path / "alerts" / "**" / "*.parquet"), recursive=True))
                  for r in pq.read_table(f).to_pylist()), key=lambda a: a["last_judged"])
    latest = {(a["aoi"], a["alert_id"]): (a["confidence"], a["status"], a["before_date"]) for a in log}
    everything = {(a["aoi"], a["alert_id"]): (a["confidence"], a["status"], a["before_date"])
                  for a in sorted(streamed["alerts"], key=lambda a: a["last_judged"])}
    assert latest and latest == everything
    assert {str(r["scan_date"]) for r in tables.read_rows(out)} == set(DATES), "the table holds all five dates"
