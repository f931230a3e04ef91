"""`planet-tiles demo` end to end, and the report command on its scans."""

import dataclasses
import datetime as dt
import json
import os

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import Geod

from pipelines.analysis import report, rules
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from tests import tables

#: Measured over repeated demo runs: precision 0.7 to 0.9, recall 0.6 to 0.7 (three dates, UDM2 clear
#: fraction 0.8). The floors leave a margin below those.
PRECISION_FLOOR, RECALL_FLOOR = 0.6, 0.5


def f2(precision: float, recall: float) -> float:
    return 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0


def random_tiles(scans: str, planted: str, alerts: int, draws: int = 300) -> np.ndarray:
    """``(precision, recall, F2)`` of ``draws`` random picks of as many tiles as there are alerts among the
    tiles judged after the first date: what alerts placed by chance would score here."""
    obs = rules.observations(tables.read_rows(scans))
    places = json.load(open(planted))["features"]
    first = min(o.scan_date for o in obs)
    candidates = [o for o in obs if o.scan_date != first and o.judged()]
    template = rules.alerts(obs)[0]
    last = max(o.scan_date for o in obs)
    seen = [o.geometry for o in obs if o.scan_date == last and o.judged()]
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(draws):
        picked = [candidates[i] for i in rng.choice(len(candidates), alerts, replace=False)]
        scored = report.score([dataclasses.replace(template, tile_id=o.tile_id, geometry=o.geometry) for o in picked],
                              seen, places)
        scores.append((scored["precision"], scored["recall"], f2(scored["precision"], scored["recall"])))
    return np.array(scores)


def test_demo_runs_every_stage_and_finds_the_planted_clearings(demo):
    summary = demo["report"]
    assert summary["scan_dates"] == ["2026-06-01", "2026-07-13", "2026-07-27"] and summary["aois"] == ["watched"]
    aoi = shapely.geometry.shape(json.loads(open(demo["aoi"]).read())["features"][0]["geometry"])
    area_km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(aoi)[0]) / 1e6
    commits = {c.partitions[0][0]: c.facts for c in scans.commits(Warehouse(demo["scans"]))}
    for date in summary["scan_dates"]:
        manifest = commits[date]
        # the scan's tiles are 768 m UTM tiles (the bundle's 3 m x 256 px): the AOI's area in such tiles,
        # at least, are listed, and most are read (the rest are clouded edges of scenes or nodata)
        assert manifest["tile_matrix"] == "UTM21S-3m" and manifest["enumerated"] >= area_km2 / 0.768**2
        assert manifest["inferred"] > 0.8 * area_km2 / 0.768**2
        assert manifest["inferred"] + manifest["skipped"] + manifest["failed"] == manifest["enumerated"]
    truth = summary["truth"]
    print(f"\ndemo in {demo['seconds']:.0f} s: {summary['alerts']} alerts, precision {truth['precision']:.2f}, "
          f"recall {truth['recall']:.2f} ({truth['recall_visible']:.2f} of places seen cloud-free), "
          f"per kind {truth['per_tag']}")
    assert truth["places"] >= 30
    assert truth["precision"] >= PRECISION_FLOOR
    assert truth["recall"] >= RECALL_FLOOR
    # Against chance: planted places are large (up to 700 m across, on 768 m tiles), so random tiles hit
    # some. Measured on two runs: random picks of as many tiles score F2 0.37 to 0.41 (median), 0.55 to
    # 0.58 (99th percentile); the model 0.65 and 0.66. It must beat 99 % of random picks on F2 (the study's
    # measure); training is not bit-for-bit repeatable on CPUs, so no further margin is asked.
    chance = random_tiles(demo["scans"], demo["planted"], summary["alerts"])
    p50, p99 = np.percentile(chance, 50, axis=0), np.percentile(chance, 99, axis=0)
    print(f"random tiles: precision {p50[0]:.2f} (99th percentile {p99[0]:.2f}), recall {p50[1]:.2f} ({p99[1]:.2f}), "
          f"F2 {p50[2]:.2f} ({p99[2]:.2f}); the model's F2 {f2(truth['precision'], truth['recall']):.2f}")
    assert f2(truth["precision"], truth["recall"]) >= p99[2]


def test_alert_files_agree_and_carry_geometry(demo):
    files = {name: os.path.join(demo["report"]["folder"], path) for name, path in demo["report"]["files"].items()}
    table = pq.read_table(files["alerts_parquet"])
    features = json.loads(open(files["alerts_geojson"]).read())["features"]
    assert table.num_rows == len(features) == demo["report"]["alerts"] > 0
    assert json.loads(table.schema.metadata[b"geo"])["primary_column"] == "geometry"
    for row, feature in zip(table.to_pylist(), features):
        assert row["tile_id"] == feature["properties"]["tile_id"]
        # Every column but the geometry, dates and times in ISO 8601 (RFC 3339's "T"), as GeoJSON readers parse them.
        iso = {k: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for k, v in row.items()}
        assert feature["properties"] == {k: v for k, v in iso.items() if k != "geometry"}
        assert "T" in feature["properties"]["detected_acquired"]
        assert shapely.from_wkb(row["geometry"]).equals(shapely.geometry.shape(feature["geometry"]))
        assert row["before_date"] < row["first_detected"] <= row["last_judged"] and row["labels_gained"]
        assert 0 < row["probability"] <= 1 and row["confidence"] in rules.CONFIDENCE_LEVELS
    counted = duckdb.connect().sql(f"select count(*) from read_parquet('{files['alerts_parquet']}')").fetchall()[0][0]
    assert counted == table.num_rows


def test_events_hold_every_alert_with_pictures_and_zones(demo):
    files = {name: os.path.join(demo["report"]["folder"], path) for name, path in demo["report"]["files"].items()}
    alerts = {r["alert_id"]: r for r in pq.read_table(files["alerts_parquet"]).to_pylist()}
    found = pq.read_table(files["events_parquet"]).to_pylist()
    assert len(found) == demo["report"]["events"] > 0
    members = [i for e in found for i in e["alert_ids"]]
    assert sorted(members) == sorted(alerts), "every alert in exactly one event"
    for e in found:
        assert e["tiles"] == len(e["alert_ids"])
        assert e["area_ha"] == pytest.approx(sum(alerts[i]["area_m2"] for i in e["alert_ids"]) / 1e4)
        outline = shapely.from_wkb(e["geometry"])
        assert all(outline.covers(shapely.from_wkb(alerts[i]["geometry"]).centroid) for i in e["alert_ids"])
    # The demo's scenes are where the scan rows say: every event has both pictures, beside the report.
    folder = os.path.dirname(files["report"])
    assert all(e["before_image"] and e["after_image"] for e in found)
    assert all(os.path.getsize(os.path.join(folder, e["after_image"])) > 0 for e in found)
    # The demo's zone covers the western half of the watched AOI: some events touch it, none beyond it.
    assert any(e["zones"] for e in found)
    assert all(z["area_ha"] <= e["area_ha"] + 1e-6 for e in found for z in e["zones"])


def test_report_command_finds_the_bundle_from_the_scans_commits(demo, tmp_path):
    # The pictures and clearings are the demo's own report's to test: this one reads the bundle and the table.
    again = report.run(["--scans", demo["scans"], "--output", str(tmp_path), "--aoi", "watched", "--no_images",
                        "--no_clearings"])
    # Paths in the report are relative to its version's folder: the folder can be copied or served elsewhere.
    version = os.path.realpath(again["folder"])
    assert os.path.realpath(os.path.join(version, again["bundle"])) == os.path.realpath(demo["bundle"])
    assert os.path.realpath(os.path.join(version, again["scans"])) == os.path.realpath(demo["scans"])
    written = (tmp_path / "current" / "summary.json").read_text() + (tmp_path / "current" / "report.html").read_text()
    assert str(tmp_path) not in written and os.path.dirname(demo["scans"]) not in written
    assert again["alerts"] == demo["report"]["alerts"]
    page = (tmp_path / "current" / "report.html").read_text()
    assert again["model_version"] in page and "known change place" not in page
