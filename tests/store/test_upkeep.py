"""``maintain`` (snapshot expiry and the orphan sweep) and ``migrate`` (scans of the layout before tables)."""

import datetime as dt
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import box

from pipelines.store import migrate, scans, schema, upkeep
from pipelines.store.catalog import Warehouse
from planet_core import storage
from planet_core.errors import UserError
from planet_core.labels import LABELS
from tests import tables

D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 7, 1)


def row(tile_id, clear=None):
    return {"tile_id": tile_id, "scene_id": "s1", "scan_id": "x", "acquired": None, "geometry": box(0, 0, 1, 1).wkb,
            "lon": 0.5, "lat": 0.5, "area_m2": 1.0, "valid_fraction": 1.0, "clear_fraction": clear,
            "cloud_fraction": None, "shadow_fraction": None, "haze_fraction": None,
            **{f"p_{n}": 0.0 for n in LABELS}, "labels": ["primary"], "model_version": "v"}


def age(path, days):
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_maintain_expires_old_snapshots_and_sweeps_only_what_none_references(tmp_path):
    out = tmp_path / "scans"
    tables.write_scans(out, {("a", D1): [row("t1")]})
    tables.write_scans(out, {("a", D1): [row("t2")]})  # replaces t1's file
    warehouse = Warehouse(str(out))
    kept_errors = scans.errors_path(warehouse, "r-b")  # a committed run's error lines: referenced
    os.makedirs(os.path.dirname(kept_errors))
    with open(kept_errors, "w") as handle:
        handle.write('{"reason": "read: broken"}\n')
    scans.write_rows(warehouse, "2026-07-01", "b", [tables.complete(row("t3"), "b", D2)],
                     {"run_id": "r-b", "pipeline": "test", "partitions": ["2026-07-01/b"], "errors": kept_errors})
    killed = out / "tile_labels" / "data" / "scan_date=2026-06-01" / "aoi=a" / "part-killed.parquet"
    killed.write_bytes(b"a killed run's data file")
    errors = out / "errors" / "never-committed.jsonl"
    errors.write_text('{"reason": "read: broken"}\n')
    fresh = out / "tile_labels" / "data" / "scan_date=2026-06-01" / "aoi=a" / "part-running.parquet"
    fresh.write_bytes(b"a running scan's file")
    for path in (out / "tile_labels").rglob("*"):
        if path.is_file() and path != fresh:
            age(path, 40)
    age(killed, 40)
    age(errors, 40)
    age(kept_errors, 40)
    mine = tmp_path / "scans" / "notes.txt"
    mine.write_text("kept: outside the table's folders")
    first = scans.commits(warehouse)[-1]
    planned = upkeep.maintain(warehouse, keep_days=0, orphan_days=3, dry_run=True)
    assert all((out / p).exists() for p in planned["deleted"]), "a dry run deletes nothing"
    assert (planned["snapshots_expired"], planned["snapshots_kept"]) == (2, 1)
    done = upkeep.maintain(warehouse, keep_days=0, orphan_days=3)
    assert done["deleted"] == planned["deleted"] and done["snapshots_expired"] == 2
    assert (done["snapshots_kept"], len(scans.commits(warehouse))) == (1, 1)
    assert not killed.exists() and not errors.exists() and fresh.exists() and mine.exists()
    assert os.path.exists(kept_errors), "the current snapshot's run names its error lines"
    deleted = set(done["deleted"])
    assert {"tile_labels/data/scan_date=2026-06-01/aoi=a/part-killed.parquet", "errors/never-committed.jsonl",
            f"tile_labels/data/scan_date=2026-06-01/aoi=a/part-{first.facts['run_id']}.parquet"} <= deleted
    assert not any(p.startswith("tile_labels/metadata/") and p.endswith(".metadata.json") for p in deleted)
    assert sorted(r["tile_id"] for r in tables.read_rows(out)) == ["t2", "t3"], "the current snapshot reads as before"
    with pytest.raises(UserError, match="no snapshot that early"):
        scans.snapshot(warehouse, as_of=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400))
    again = upkeep.maintain(warehouse, keep_days=0, orphan_days=3)
    assert (again["snapshots_expired"], again["files_deleted"]) == (0, 0)


def test_maintain_makes_the_table_when_there_is_none_and_says_so(tmp_path, caplog):
    """For BigQuery's view before the first scan; said in a warning, since a mistyped --scans made a warehouse
    and passed for one with nothing to do. A dry run makes none: it changes nothing."""
    with pytest.raises(UserError, match="no scans table there \\(--dry_run makes none\\)"):
        upkeep.maintain(Warehouse(str(tmp_path / "scans")), dry_run=True)
    assert not (tmp_path / "scans").exists()
    done = upkeep.maintain(Warehouse(str(tmp_path / "scans")))
    assert done["made"] and done["snapshots_expired"] == 0 and (tmp_path / "scans" / "catalog.db").exists()
    assert "there was no scans table; an empty one is made" in caplog.text
    assert scans.snapshot(Warehouse(str(tmp_path / "scans"))).snapshot_id is None
    caplog.clear()
    assert not upkeep.maintain(Warehouse(str(tmp_path / "scans")))["made"] and "no scans table" not in caplog.text


def old_layout(root):
    """Scans as the version before tables wrote them: a published partition (its manifest lists one run's
    files and error lines, plus a killed run's leftover beside them), and one with no manifest."""
    old = [c for c in schema.COLUMNS if c.name not in ("scene_uri", "bbox", "mask_status", "aoi", "scan_date")]
    part = root / "scan_date=2026-06-01" / "aoi=a"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row("t1", 0.9), row("t2")], schema=schema.arrow_schema(old)),
                   part / "part-r1-00000-of-00001.parquet")
    pq.write_table(
        pa.Table.from_pylist([row("orphan")], schema=schema.arrow_schema(old)), part / "part-r0-00000-of-00001.parquet"
    )
    (part / "errors-r1-00000-of-00001.jsonl").write_text(
        json.dumps({"item": "t1", "mask_error": "bad", "status": "written"})
    )
    (part / "_manifest.json").write_text(json.dumps({
        "run_id": "r1", "bundle": "bundles/v1", "model_version": "v", "scene_uris": {"s1": "/scenes/s1.tif"},
        "files": ["part-r1-00000-of-00001.parquet", "errors-r1-00000-of-00001.jsonl"]}))
    lone = root / "scan_date=2026-07-01" / "aoi=a"
    lone.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([row("t9")], schema=schema.arrow_schema(old)), lone / "part-r2-00000-of-00001.parquet"
    )


def test_migrate_imports_what_each_manifest_lists_once_and_names_the_rest(tmp_path):
    root = tmp_path / "scans"
    old_layout(root)
    with pytest.raises(UserError, match="planet-tiles migrate"):
        tables.write_scans(root, {("a", D2): [row("new")]})  # a table would hide the old scans: migrate first
    done = migrate.migrate(str(root))
    assert done["imported"] == {"scan_date=2026-06-01/aoi=a": 2}
    assert done["not_imported"] == ["scan_date=2026-07-01/aoi=a (no manifest: files of a run that never published)"]
    got = {r["tile_id"]: r for r in tables.read_rows(root)}
    assert sorted(got) == ["t1", "t2"], "the killed run's leftover stays out"
    assert (got["t1"]["mask_status"], got["t2"]["mask_status"]) == ("unreadable", "absent")
    assert got["t1"]["scene_uri"] == "/scenes/s1.tif" and got["t1"]["scan_date"] == D1 and got["t1"]["aoi"] == "a"
    assert got["t1"]["bbox"] == {"xmin": 0.0, "ymin": 0.0, "xmax": 1.0, "ymax": 1.0}
    assert scans.latest_bundle(Warehouse(str(root))) == "bundles/v1"
    assert migrate.migrate(str(root))["imported"] == done["imported"]
    assert sorted(r["tile_id"] for r in tables.read_rows(root)) == ["t1", "t2"], "a second migrate doubles nothing"
    assert (root / "scan_date=2026-06-01" / "aoi=a" / "part-r1-00000-of-00001.parquet").exists(), "old files stay"


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--keep_days", "-1", "--keep_days -1: must be 0 or more"),
    ("--orphan_days", "-1", "--orphan_days -1: must be at least 1"),
    ("--orphan_days", "0", "--orphan_days 0: must be at least 1 (a younger file no snapshot references may be a "
                           "running scan's"),
    ("--orphan_days", "0.99", "--orphan_days 0.99: must be at least 1"),
])
def test_days_that_could_lose_data_are_refused_before_anything_is_touched(tmp_path, capsys, flag, value, message):
    from tests.conftest import refused

    stderr = refused(capsys, "maintain", "--scans", str(tmp_path / "scans"), flag, value)
    assert message in stderr and not (tmp_path / "scans").exists()


def test_a_running_scans_file_younger_than_a_day_is_kept_at_the_shortest_setting(tmp_path):
    """At ``--orphan_days 1`` a file no snapshot references is deleted once a day old, not a minute before."""
    warehouse = Warehouse(str(tmp_path / "scans"))
    scans.write_rows(warehouse, "2026-06-01", "a", [tables.complete(row("t1"), "a", D1)],
                     {"run_id": "r1", "pipeline": "test", "partitions": ["2026-06-01/a"]})
    folder = tmp_path / "scans" / "tile_labels" / "data" / "scan_date=2026-06-01" / "aoi=a"
    running, stale = folder / "part-running.parquet", folder / "part-stale.parquet"
    running.write_bytes(b"a running scan's file")
    stale.write_bytes(b"a killed run's file")
    age(running, 1 - 60 / 86400)
    age(stale, 1 + 60 / 86400)
    done = upkeep.maintain(warehouse, keep_days=30, orphan_days=1)
    assert done["deleted"] == ["tile_labels/data/scan_date=2026-06-01/aoi=a/part-stale.parquet"] and running.exists()


def test_a_copied_warehouse_is_read_but_never_written_or_swept(tmp_path, caplog):
    """``cp -r scans backup``: the copy's catalog names the original's files (Iceberg records absolute
    locations). Maintained, the copy swept the original's folder against its own older snapshots and deleted
    the original's newest metadata and data: the original could no longer be read. Now upkeep and commits
    on the copy are refused, naming the original; reading the copy reads the original, with a warning."""
    import shutil

    original, copy = tmp_path / "scans", tmp_path / "backup"
    tables.write_scans(original, {("a", D1): [row("t1")]})
    shutil.copytree(original, copy)
    tables.write_scans(original, {("a", D2): [row("t2")]})  # the weekly scan goes on
    for path in original.rglob("*"):
        if path.is_file():
            age(path, 4)  # four days later: every file older than --orphan_days
    refusal = f"{copy}: its tile_labels table is {original / 'tile_labels'}, not this folder's"
    with pytest.raises(UserError, match=f"^{refusal} \\(a copy of that warehouse"):
        upkeep.maintain(Warehouse(str(copy)))
    with pytest.raises(UserError, match=f"^{refusal}"):
        scans.write_rows(Warehouse(str(copy)), "2026-07-01", "a", [tables.complete(row("t3"), "a", D2)],
                         {"run_id": "r3", "pipeline": "test", "partitions": ["2026-07-01/a"]})
    with caplog.at_level("WARNING"):
        assert [r["tile_id"] for r in tables.read_rows(copy)] == ["t1"]
    assert "reading the files there" in caplog.text
    assert sorted(r["tile_id"] for r in tables.read_rows(original)) == ["t1", "t2"], "the original whole"
    upkeep.maintain(Warehouse(str(original)))  # the original's own upkeep is its own
    assert sorted(r["tile_id"] for r in tables.read_rows(original)) == ["t1", "t2"]


def _clearings_commit(warehouse, run_id, errors=None):
    """One clearings commit of AOI ``a`` (one polygon), as delineate makes it, naming ``errors`` if given."""
    from pipelines.store import clearings as stored

    outline = shapely.box(0, 0, 0.001, 0.001)
    clearing = {"clearing_id": run_id, "event_id": "e", "aoi": "a", "alert_ids": ["x"], "before_date": D1,
                "detected_date": D2, "labels_gained": ["agriculture"], "confidence": "high", "area_ha": 1.0,
                "judged_share": 1.0, "change_index": "ndvi", "threshold": 0.1, "geometry": outline.wkb,
                "lon": 0.0005, "lat": 0.0005}
    path = warehouse.path(stored.TABLE, "data", f"part-{run_id}.parquet")
    storage.write_bytes(path, schema.parquet_bytes([clearing], schema.CLEARING_COLUMNS))
    stored.replace_aois(warehouse, ["a"], [path], {"run_id": run_id, "aois": ["a"], "errors": errors})
    return path


def test_the_latest_clearings_of_an_aoi_are_its_newest_commits(tmp_path):
    """What the report reuses: the newest commit that delineated the AOI (its options, its clearings), not
    the first; an AOI no commit delineated has none."""
    from pipelines.store import clearings as stored

    warehouse = Warehouse(str(tmp_path / "scans"))
    tables.write_scans(tmp_path / "scans", {("a", D1): [row("t1")]})
    for run_id in ("r1", "r2", "r3"):
        _clearings_commit(warehouse, run_id)
    commit, rows = stored.latest(warehouse, "a")
    assert commit.facts["run_id"] == "r3" and rows["clearing_id"].to_pylist() == ["r3"]
    assert stored.latest(warehouse, "b") is None


def test_maintain_keeps_the_clearings_table_tidy_and_its_error_lines(tmp_path):
    """A delineate run's error lines sit in the shared errors folder: the sweep judged them by the scans
    table's commits alone and deleted them once old, though the clearings commit names them; and the
    clearings table was never expired nor swept. Now every table of the warehouse is."""
    warehouse = Warehouse(str(tmp_path / "scans"))
    tables.write_scans(tmp_path / "scans", {("a", D1): [row("t1")]})
    errors = warehouse.path("errors", "delineate-r2.jsonl")
    storage.write_text(errors, '{"reason": "no scenes"}\n')
    replaced = _clearings_commit(warehouse, "r1")
    current = _clearings_commit(warehouse, "r2", errors)
    for path in (tmp_path / "scans").rglob("*"):
        if path.is_file():
            age(path, 40)
    done = upkeep.maintain(warehouse, keep_days=0, orphan_days=3)
    assert done["tables"] == ["tile_labels", "clearings"] and done["snapshots_expired"] == 1  # the clearings r1
    deleted = set(done["deleted"])
    assert "clearings/data/part-r1.parquet" in deleted and not os.path.exists(replaced)
    assert os.path.exists(errors) and os.path.exists(current), "the current clearings commit's files stay"
    assert "errors/delineate-r2.jsonl" not in deleted
    assert upkeep.maintain(warehouse, keep_days=0, orphan_days=3)["files_deleted"] == 0
