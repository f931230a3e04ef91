import json

import duckdb
import pytest
from shapely.geometry import box

from pipelines.analysis import layout, schema
from planet_model import storage
from planet_model.labels import LABELS


def row(tile_id):
    return {"tile_id": tile_id, "scene_id": "s", "scan_id": "x", "acquired": None,
            "geometry": box(0, 0, 1, 1).wkb, "lon": 0.5, "lat": 0.5, "area_m2": 1.0, "valid_fraction": 1.0,
            **{f"p_{n}": 0.0 for n in LABELS}, "labels": ["primary"], "model_version": "v"}


@pytest.fixture()
def scans(tmp_path):
    out = str(tmp_path / "scans")
    for date, aoi, tiles in (("2026-06-01", "a", ["t1", "t2"]), ("2026-07-01", "a", ["t1"]), ("2026-07-01", "b", ["t9"])):
        part = layout.partition(out, date, aoi)
        storage.write_bytes(storage.join(part, "part-r1-00000-of-00001.parquet"),
                            schema.parquet_bytes([row(t) for t in tiles], schema.FILE_COLUMNS))
        storage.write_text(storage.join(part, layout.MANIFEST), json.dumps({"bundle": f"bundles/{date}"}))
    # what readers must not pick up: a Beam temp shard and a file that is not a part file
    storage.write_bytes(storage.join(out, "scan_date=2026-07-01", "aoi=a", "beam-temp-x", "1.parquet"), b"junk")
    storage.write_text(storage.join(out, "notes.parquet.txt"), "not a scan")
    return out


def test_partitions_paths_and_keys():
    assert layout.partition("gs://b/scans", "2026-06-01", "xingu") == "gs://b/scans/scan_date=2026-06-01/aoi=xingu"
    assert layout.partition_path("2026-06-01", "xingu") == "scan_date=2026-06-01/aoi=xingu"


def test_pyarrow_and_duckdb_read_the_same_rows_with_partition_keys(scans):
    table = layout.read_table(scans)
    got = sorted((str(r["scan_date"]), r["aoi"], r["tile_id"]) for r in table.to_pylist())
    assert got == [("2026-06-01", "a", "t1"), ("2026-06-01", "a", "t2"), ("2026-07-01", "a", "t1"), ("2026-07-01", "b", "t9")]
    assert layout.read_table(scans, aoi="b").num_rows == 1
    rows = duckdb.connect().sql(f"select scan_date, aoi, tile_id from {layout.duckdb_relation(scans)} order by all").fetchall()
    assert [(str(d), a, t) for d, a, t in rows] == got
    with pytest.raises(FileNotFoundError, match="no scan output"):
        layout.read_table(scans + "-elsewhere")


def test_the_newest_manifest_names_the_bundle_streamed_or_not(scans):
    assert layout.latest_bundle(scans) == "bundles/2026-07-01"
    assert layout.latest_bundle(scans, aoi="a") == "bundles/2026-07-01"
    path, text = layout.stream_manifest(scans, layout.partition_path("2026-08-01", "a"), "bundles/streamed", "v9")
    storage.write_text(path, text)
    assert layout.latest_bundle(scans) == "bundles/streamed"
    assert json.loads(text)["model_version"] == "v9"


@pytest.mark.parametrize("bad", ["20260601", "2026-W23-1", "2026-6-1", "2026-02-30", "today"])
def test_scan_dates_are_calendar_dates(bad):
    assert layout.check_scan_date("2026-06-01") == "2026-06-01"
    with pytest.raises(ValueError, match="--scan_date"):
        layout.check_scan_date(bad)


def test_a_partition_with_a_bad_date_is_skipped_not_fatal(scans, caplog):
    bad = layout.partition(scans, "20260601", "a")
    storage.write_bytes(storage.join(bad, "part-r9-00000-of-00001.parquet"),
                        schema.parquet_bytes([row("t7")], schema.FILE_COLUMNS))
    assert layout.read_table(scans).num_rows == 4
    assert "scan_date=20260601" in caplog.text
    assert duckdb.connect().sql(f"select count(*) from {layout.duckdb_relation(scans)}").fetchall() == [(4,)]


def test_the_bigquery_load_script_runs_the_layouts_command():
    """infra/bigquery/load_scan.sh (what a cloud user runs) loads the partitions this module writes."""
    import re
    import shlex
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "infra" / "bigquery" / "load_scan.sh").read_text()
    line = re.search(r"^bq load .*?(?=^\S|\Z)", script.replace("\\\n", " "), flags=re.M | re.S).group(0)
    values = {"${prefix}": "gs://B/scans", "${date}": "2026-11-24", "${aoi}": "xingu", "${dataset}": "planet_tiles"}
    for name, value in values.items():
        line = line.replace(name, value)
    assert shlex.split(line) == layout.bigquery_load("gs://B/scans", "2026-11-24", "xingu", "planet_tiles.tile_labels")
