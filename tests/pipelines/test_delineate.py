"""Clearings on the demo's scans: measured against the planted change, committed by `planet-tiles delineate`,
reused by the report, and never lost or doubled by a failed or killed run."""

import json

import pyarrow.parquet as pq
import pytest
import shapely

from pipelines import delineate
from pipelines.analysis import clearings, event_images, queries, report
from pipelines.store import clearings as stored
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from tests import tables
from tests.conftest import RUNNER, run_here
from tests.pipelines.test_reliability import _kill_when, cli, one_line_failure

#: Measured on the demo (two runs): in the events' frames the clearings cover 0.86 of the planted area with
#: a mean IoU of 0.80 and 2 ha outside it (0.7 %); the issue's targets are within 15 %, 0.6 and below 10 %.
AREA_RATIO, MEAN_IOU, FALSE_SHARE = (0.75, 1.15), 0.6, 0.1


def test_the_report_delineates_the_planted_clearings(demo):
    summary = demo["report"]
    measured = summary["truth"]["clearings"]["in_events"]
    print(f"\nclearings: {summary['cleared_ha']:.1f} ha in {summary['clearings']} polygons against "
          f"{summary['event_area_ha']:.1f} ha of event tiles; {measured}")
    assert AREA_RATIO[0] <= measured["area_ratio"] <= AREA_RATIO[1]
    assert measured["mean_iou"] >= MEAN_IOU and measured["recall_iou50"] >= MEAN_IOU
    assert measured["false_ha"] <= FALSE_SHARE * measured["planted_ha"]
    assert summary["cleared_ha"] < 0.25 * summary["event_area_ha"], "the tiles' area is not the cleared area"

    folder = summary["folder"]
    found = pq.read_table(f"{folder}/{summary['files']['clearings_parquet']}").to_pylist()
    events = {e["event_id"]: e for e in pq.read_table(f"{folder}/{summary['files']['events_parquet']}").to_pylist()}
    alerts = {a["alert_id"]: a for a in pq.read_table(f"{folder}/{summary['files']['alerts_parquet']}").to_pylist()}
    assert len(found) == summary["clearings"] > 0
    for c in found:
        event = events[c["event_id"]]
        assert set(c["alert_ids"]) <= set(event["alert_ids"]) and c["area_ha"] >= 1.0
        outline = shapely.from_wkb(c["geometry"])
        assert outline.is_valid and any(outline.intersects(shapely.from_wkb(alerts[i]["geometry"]))
                                        for i in c["alert_ids"])
        # the dates some of the event's alerts compared: the first comparison that saw it
        assert (c["before_date"], c["detected_date"]) in {
            (alerts[i]["before_date"], alerts[i]["first_detected"]) for i in event["alert_ids"]}
    for event in events.values():
        mine = sum(c["area_ha"] for c in found if c["event_id"] == event["event_id"])
        assert event["cleared_ha"] == pytest.approx(mine, abs=1e-3)
    features = json.loads(open(f"{folder}/{summary['files']['clearings_geojson']}").read())["features"]
    assert sorted(f["id"] for f in features) == sorted(c["clearing_id"] for c in found)
    page = open(f"{folder}/{summary['files']['report']}").read()
    assert "ha cleared</strong> in" in page and '"clearings":{"type":"FeatureCollection"' in page


def _warehouse(demo, tmp_path):
    return tables.copy_scans(demo["scans"], tmp_path / "scans")


def test_delineate_commits_what_the_report_found_and_the_report_reuses_it(demo, tmp_path, caplog,
                                                                             monkeypatch):
    out = _warehouse(demo, tmp_path)
    result = delineate.run(["--scans", str(out), *RUNNER])
    assert result["delineated"] == demo["report"]["events"] and result["failed"] == 0
    table = scans.open_table(Warehouse(str(out)), create=False, name=stored.TABLE)
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == result["clearings"] == demo["report"]["clearings"]
    assert result["cleared_ha"] == pytest.approx(demo["report"]["cleared_ha"], abs=0.01)
    assert {r["clearing_id"] for r in rows} == {
        c["clearing_id"] for c in pq.read_table(
            f"{demo['report']['folder']}/{demo['report']['files']['clearings_parquet']}").to_pylist()}
    assert [f.name for f in table.schema().fields] == [c.name for c in schema.CLEARING_COLUMNS]

    caplog.set_level("INFO")
    again = report.run(["--scans", str(out), "--output", str(tmp_path / "report"), "--no_images"])
    assert "clearings from the clearings table" in caplog.text and "delineating" not in caplog.text
    assert again["cleared_ha"] == pytest.approx(result["cleared_ha"], abs=0.01)
    # other options: the stored clearings are not the answer, the report delineates again
    caplog.clear()
    report.run(["--scans", str(out), "--output", str(tmp_path / "report"), "--no_images", "--min_clearing_ha", "5"])
    assert "delineating the clearings of" in caplog.text
    # another version of the method (a delineation stored before an upgrade): delineated again too
    caplog.clear()
    monkeypatch.setattr(clearings, "METHOD", clearings.METHOD + 1)
    report.run(["--scans", str(out), "--output", str(tmp_path / "report"), "--no_images"])
    assert "delineating the clearings of" in caplog.text


def _clearing_ids(out):
    return sorted(r["clearing_id"] for r in stored.latest(Warehouse(str(out)), "watched")[1].to_pylist())


def test_a_delineation_whose_every_event_fails_or_is_killed_leaves_the_clearings(demo, tmp_path):
    out = _warehouse(demo, tmp_path)
    delineate.run(["--scans", str(out), *RUNNER])  # in this process: only the killed run needs its own
    before = _clearing_ids(out)

    # every scene the events need, replaced by a broken file of the same scene id
    broken = tmp_path / "broken"
    broken.mkdir()
    con = queries.connect(scans.snapshot(Warehouse(str(out))), materialize=True)
    for scene_id in event_images.scene_items(con):
        (broken / f"{scene_id}.tif").write_bytes(b"II*\x00not a scene")
    code, err = run_here("delineate", "--scans", str(out), "--scenes", str(broken / "*.tif"), *RUNNER)
    one_line_failure(code, err, "every one of", "clearings table is unchanged")
    assert _clearing_ids(out) == before

    # killed while committing other clearings (bigger only): readers see the old ones or the new ones, whole
    metadata = out / stored.TABLE / "metadata"
    known = set(metadata.iterdir())
    doomed = cli("delineate", "--scans", str(out), "--min_clearing_ha", "3", *RUNNER)
    _kill_when(doomed, lambda: any(p.suffix == ".avro" for p in set(metadata.iterdir()) - known))
    areas = [r["area_ha"] for r in stored.latest(Warehouse(str(out)), "watched")[1].to_pylist()]
    assert _clearing_ids(out) == before or min(areas) >= 3
    code, err = run_here("delineate", "--scans", str(out), *RUNNER)
    assert code == 0, err
    assert _clearing_ids(out) == before, "a re-run replaces: nothing of the killed run is read"


def test_a_delineation_that_fails_after_committing_says_the_table_holds_its_clearings(demo, tmp_path,
                                                                                     status_lost_after_the_job):
    out = _warehouse(demo, tmp_path)
    code, err = run_here("delineate", "--scans", str(out), *RUNNER)
    one_line_failure(code, err, "lost the job's status", "the clearings table is this run's, published before it")
    assert _clearing_ids(out)
