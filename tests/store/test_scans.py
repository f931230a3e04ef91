"""The scans table: commits replace partitions whole, readers read snapshots, concurrent writers leave one
writer's rows, a failed commit changes nothing, and the files carry what GeoParquet readers need."""

import datetime as dt
import json
import multiprocessing
import os

import duckdb
import pyarrow.parquet as pq
import pytest
from shapely.geometry import box

from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core.errors import UserError
from planet_core.labels import LABELS
from tests import tables

D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 7, 1)


def row(tile_id, x=0.0):
    return {"tile_id": tile_id, "scene_id": "s", "acquired": None, "geometry": box(x, 0, x + 1, 1).wkb, "lon": x + .5,
            "lat": 0.5, "area_m2": 1.0, "valid_fraction": 1.0, **{f"p_{n}": 0.0 for n in LABELS},
            "labels": ["primary"]}


def tiles(location, aoi=None):
    return sorted((r["scan_date"], r["aoi"], r["tile_id"]) for r in tables.read_rows(location, aoi))


def test_a_commit_replaces_its_partition_and_nothing_else(tmp_path):
    out = tmp_path / "scans"
    tables.write_scans(out, {("a", D1): [row("t1"), row("t2")], ("a", D2): [row("t1")], ("b", D2): [row("t9")]},
                       bundle="bundles/v1")
    assert tiles(out) == [(D1, "a", "t1"), (D1, "a", "t2"), (D2, "a", "t1"), (D2, "b", "t9")]
    tables.write_scans(out, {("a", D1): [row("t3")]}, bundle="bundles/v2")
    assert tiles(out) == [(D1, "a", "t3"), (D2, "a", "t1"), (D2, "b", "t9")]
    assert tiles(out, aoi="b") == [(D2, "b", "t9")]
    warehouse = Warehouse(str(out))
    assert scans.latest_bundle(warehouse) == "bundles/v2" and scans.latest_bundle(warehouse, "b") == "bundles/v1"
    # The snapshot lists the data files readers read: DuckDB reading exactly those sees the same rows.
    snapshot = scans.snapshot(warehouse)
    files = ", ".join(f"'{f}'" for f in snapshot.files)
    assert duckdb.sql(f"select count(*) from read_parquet([{files}])").fetchall() == [(3,)]
    assert len(list((out / "tile_labels" / "data").rglob("*.parquet"))) == 4, "replaced files stay until upkeep"


def test_time_travel_reads_the_snapshot_of_a_moment(tmp_path):
    out = tmp_path / "scans"
    tables.write_scans(out, {("a", D1): [row("t1")]})
    middle = dt.datetime.now(dt.timezone.utc)
    tables.write_scans(out, {("a", D1): [row("t2"), row("t3")]})
    warehouse = Warehouse(str(out))
    assert scans.read_arrow(warehouse, as_of=middle).column("tile_id").to_pylist() == ["t1"]
    assert sorted(scans.read_arrow(warehouse).column("tile_id").to_pylist()) == ["t2", "t3"]
    with pytest.raises(UserError, match="no snapshot that early"):
        scans.snapshot(warehouse, as_of=middle - dt.timedelta(days=1))


def test_a_commit_of_files_of_another_partition_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / "scans"
    tables.write_scans(out, {("a", D1): [row("t1")]})
    warehouse = Warehouse(str(out))
    stray = str(tmp_path / "scans" / "tile_labels" / "data" / "stray.parquet")
    with open(stray, "wb") as handle:
        handle.write(schema.parquet_bytes([tables.complete(row("t7"), "b", D2)], schema.COLUMNS))
    before = scans.snapshot(warehouse).snapshot_id
    with pytest.raises(ValueError, match="holds partition"):
        scans.replace_partition(warehouse, D1.isoformat(), "a", [stray], {"run_id": "r", "partitions": []})
    assert scans.snapshot(warehouse).snapshot_id == before and tiles(out) == [(D1, "a", "t1")]


def test_appending_a_window_twice_adds_its_rows_once(tmp_path):
    warehouse = Warehouse(str(tmp_path / "scans"))
    path = scans.data_folder(warehouse, D1.isoformat(), "a") + "/part-stream-w1.parquet"
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(schema.parquet_bytes([tables.complete(row("t1"), "a", D1)], schema.COLUMNS))
    facts = {"run_id": "stream", "partitions": [f"{D1}/a"], "bundle": "b"}
    assert scans.append_files(warehouse, [path], facts) is not None
    assert scans.append_files(warehouse, [path], facts) is None, "a retried window commits nothing"
    assert tiles(tmp_path / "scans") == [(D1, "a", "t1")]


def test_readers_refuse_a_folder_without_scans_and_name_the_old_layout(tmp_path):
    with pytest.raises(UserError, match="no scans there"):
        scans.snapshot(Warehouse(str(tmp_path)))
    (tmp_path / "scan_date=2026-06-01" / "aoi=a").mkdir(parents=True)
    with pytest.raises(UserError, match="planet-tiles migrate --scans"):
        scans.snapshot(Warehouse(str(tmp_path)))


@pytest.mark.parametrize("bad", ["20260601", "2026-W23-1", "2026-6-1", "2026-02-30", "today"])
def test_scan_dates_are_calendar_dates(bad):
    assert scans.check_scan_date("2026-06-01") == "2026-06-01"
    with pytest.raises(ValueError, match="--scan_date"):
        scans.check_scan_date(bad)


def test_data_files_are_zstd_geoparquet_with_a_bbox_covering(tmp_path):
    out = tmp_path / "scans"
    tables.write_scans(out, {("a", D1): [row("t1", x=2.0)]})
    (path,) = scans.snapshot(Warehouse(str(out))).files
    meta = pq.ParquetFile(path).metadata
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmax"] == ["bbox", "xmax"]
    assert pq.read_table(path).column("bbox").to_pylist() == [{"xmin": 2.0, "ymin": 0.0, "xmax": 3.0, "ymax": 1.0}]


def test_a_table_made_by_an_older_version_gains_the_new_columns(tmp_path):
    """Schema evolution: a table without ``scene_uri`` (made before it existed) gets the column at the next
    commit; rows of its old files read it as null."""
    from pyiceberg.schema import Schema

    warehouse = Warehouse(str(tmp_path / "scans"))
    catalog = warehouse.open()
    old_columns = tuple(c for c in schema.COLUMNS if c.name != "scene_uri")
    old = schema.iceberg_schema(old_columns)
    table = catalog.create_table(scans.IDENTIFIER, schema=old, location=warehouse.table_location(scans.TABLE),
                                 partition_spec=schema.iceberg_partition_spec(old), properties=scans.TABLE_PROPERTIES)
    path = scans.data_folder(warehouse, D1.isoformat(), "a") + "/old.parquet"
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        complete = tables.complete(row("old"), "a", D1)
        complete.pop("scene_uri")
        handle.write(schema.parquet_bytes([complete], old_columns))
    with table.transaction() as transaction:
        transaction.set_properties({scans.NAME_MAPPING: table.schema().name_mapping.model_dump_json()})
    catalog.load_table(scans.IDENTIFIER).add_files([path])
    assert isinstance(old, Schema) and "scene_uri" not in {f.name for f in table.schema().fields}
    tables.write_scans(tmp_path / "scans", {("a", D2): [row("new")]})
    got = {r["tile_id"]: r["scene_uri"] for r in tables.read_rows(tmp_path / "scans")}
    assert got == {"old": None, "new": "/scenes/s.tif"}


def _replace(location, number, rows, barrier):
    barrier.wait()
    tables.write_scans(location, {("a", D1): [row(f"w{number}-{i}") for i in range(rows)]})


@pytest.mark.slow  # other processes or servers: not for `make check`
def test_concurrent_writers_of_one_partition_leave_exactly_one_of_them(tmp_path):
    """Real processes, started together, each replacing the same partition: the table ends with one
    writer's rows, all of them, and every writer's commit is in the history (the later replaced the
    earlier)."""
    out = str(tmp_path / "scans")
    tables.write_scans(out, {("a", D1): [row("seed")], ("b", D1): [row("other")]})
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_replace, args=(out, n, n + 1, barrier)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    got = tiles(out, aoi="a")
    writers = {tile.split("-")[0] for _, _, tile in got}
    assert len(writers) == 1, got
    (winner,) = writers
    assert len(got) == int(winner[1:]) + 1, "the winner's rows, all of them"
    assert tiles(out, aoi="b") == [(D1, "b", "other")], "another partition is untouched"
    history = [c.facts["pipeline"] for c in scans.commits(Warehouse(out))]
    assert history == ["test"] * 6, "two seeds and four replacements, one after another"
