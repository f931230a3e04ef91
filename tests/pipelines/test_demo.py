"""`planet-tiles demo` end to end, and the report command on its scans."""

import json

import duckdb
import pyarrow.parquet as pq
import shapely
from pyproj import Geod

from pipelines.analysis import report

PRECISION_FLOOR, RECALL_FLOOR = 0.6, 0.5


def test_demo_runs_every_stage_and_finds_the_planted_clearings(demo):
    summary = demo["report"]
    assert summary["scan_dates"] == ["2026-06-01", "2026-07-13"] and summary["aois"] == ["watched"]
    aoi = shapely.geometry.shape(json.loads(open(demo["aoi"]).read())["features"][0]["geometry"])
    area_km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(aoi)[0]) / 1e6
    for date in summary["scan_dates"]:
        manifest = json.loads(open(f"{demo['scans']}/scan_date={date}/aoi=watched/_manifest.json").read())
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


def test_alert_files_agree_and_carry_geometry(demo):
    files = demo["report"]["files"]
    table = pq.read_table(files["alerts_parquet"])
    features = json.loads(open(files["alerts_geojson"]).read())["features"]
    assert table.num_rows == len(features) == demo["report"]["alerts"] > 0
    assert json.loads(table.schema.metadata[b"geo"])["primary_column"] == "geometry"
    for row, feature in zip(table.to_pylist(), features):
        assert row["tile_id"] == feature["properties"]["tile_id"]
        assert shapely.from_wkb(row["geometry"]).equals(shapely.geometry.shape(feature["geometry"]))
        assert row["before_date"] < row["after_date"] and row["labels_gained"]
        assert 0 < row["confidence"] <= 1
    counted = duckdb.sql(f"select count(*) from read_parquet('{files['alerts_parquet']}')").fetchall()[0][0]
    assert counted == table.num_rows


def test_report_command_finds_the_bundle_from_the_manifests(demo, tmp_path):
    again = report.run(["--scans", demo["scans"], "--output", str(tmp_path), "--aoi", "watched"])
    assert again["bundle"] == demo["bundle"]
    assert again["alerts"] == demo["report"]["alerts"]
    page = (tmp_path / "report.html").read_text()
    assert again["model_version"] in page and "known change place" not in page
