"""The pipelines' commit steps, called as Beam calls them once every file of a run is written, on a real
scans table in a temporary warehouse: what a commit carries, which error lines it keeps, and a refused run
leaving the table and the chip set as they were."""

import datetime as dt
import json

import pytest

from pipelines.steps import commits
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import publishing, storage
from planet_core.errors import RunFailed
from tests import tables
from tests.store.test_upkeep import row

D1 = dt.date(2026, 6, 1)


def summary(written, failed=0, skipped=0, mask_errors=0):
    return {"enumerated": written + failed + skipped, "written": written, "skipped": skipped, "failed": failed,
            "out_of_domain": 0, "mask_errors": mask_errors, "skipped_reasons": {},
            "failed_reasons": {"read": failed} if failed else {}}


def data_file(warehouse, name, tile_ids, scan_date="2026-06-01", aoi="a"):
    path = storage.join(scans.data_folder(warehouse, scan_date, aoi), f"part-{name}.parquet")
    rows = [tables.complete(row(t), aoi, dt.date.fromisoformat(scan_date)) for t in tile_ids]
    storage.write_bytes(path, schema.parquet_bytes(rows, schema.COLUMNS))
    return path


def errors_file(warehouse, run_id, lines):
    path = scans.errors_path(warehouse, run_id)
    storage.write_text(path, "".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("failed", "mask_errors", "kept"), [(0, 0, False), (1, 0, True), (0, 2, True)])
def test_a_scan_commit_replaces_its_partition_and_keeps_error_lines_only_when_there_are_any(
        tmp_path, failed, mask_errors, kept):
    warehouse = Warehouse(str(tmp_path / "scans"))
    tables.write_scans(tmp_path / "scans", {("a", D1): [row("old")]})
    files = [data_file(warehouse, "r1-1", ["t2"]), data_file(warehouse, "r1-0", ["t1"])]
    errors = errors_file(warehouse, "r1", [{"status": "failed"}] * failed)
    step = commits.CommitPartition(warehouse, "2026-06-01", "a", {"run_id": "r1", "pipeline": "scan"}, errors)
    [facts] = step.process(summary(2, failed, mask_errors=mask_errors), files, [errors])
    assert sorted(r["tile_id"] for r in tables.read_rows(tmp_path / "scans")) == ["t1", "t2"]
    assert storage.exists(errors) == kept and facts["errors"] == (errors if kept else None)
    assert (facts["inferred"], facts["failed"], facts["mask_errors"], facts["files"]) == (2, failed, mask_errors, 2)
    last = scans.commits(warehouse)[0]  # newest first
    assert last.snapshot_id == facts["snapshot_id"] and last.partitions == [("2026-06-01", "a")]
    assert last.facts.get("errors") == facts["errors"] and last.facts["run_id"] == "r1"


def test_a_scan_where_every_item_failed_leaves_the_table_and_says_where_its_error_lines_are(tmp_path):
    warehouse = Warehouse(str(tmp_path / "scans"))
    tables.write_scans(tmp_path / "scans", {("a", D1): [row("old")]})
    before = scans.commits(warehouse)
    errors = errors_file(warehouse, "r2", [{"status": "failed"}] * 2)
    step = commits.CommitPartition(warehouse, "2026-06-01", "a", {"run_id": "r2"}, errors)
    with pytest.raises(RunFailed, match=f"every one of 2 items failed.*The scans table is unchanged. The error lines "
                                        f"are in {errors}$"):
        list(step.process(summary(0, failed=2), [], [errors]))
    assert scans.commits(warehouse) == before and storage.exists(errors)
    with pytest.raises(RunFailed, match=r"nothing was inferred \(3 skipped, 0 failed of 3\)\. The scans table is "
                                        r"unchanged$"):
        list(step.process(summary(0, skipped=3), [], []))


def test_a_stream_window_is_one_append_of_every_partition_it_wrote_and_an_empty_one_none(tmp_path):
    warehouse = Warehouse(str(tmp_path / "scans"))
    step = commits.CommitWindows(warehouse, {"run_id": "s1", "pipeline": "stream"})
    assert list(step.process([])) == [] and not storage.exists(str(tmp_path / "scans" / "catalog.db"))
    files = [data_file(warehouse, "w-b", ["t1"], aoi="b"), data_file(warehouse, "w-a", ["t2"], "2026-06-02")]
    [snapshot_id] = step.process(files)
    [commit] = scans.commits(warehouse)
    assert commit.snapshot_id == snapshot_id and commit.facts["files_added"] == 2
    assert commit.partitions == [("2026-06-01", "b"), ("2026-06-02", "a")]
    assert sorted(r["tile_id"] for r in tables.read_rows(tmp_path / "scans")) == ["t1", "t2"]


@pytest.mark.parametrize(("failed", "mask_errors", "listed"), [(0, 0, False), (1, 0, True), (0, 1, True)])
def test_a_chip_set_lists_its_error_lines_when_there_are_any(tmp_path, failed, mask_errors, listed):
    folder = str(tmp_path / "chips")
    publishing.begin(folder, commits.CHIP_MANIFEST, "r1", "2026-06-01T00:00:00+00:00")
    run = publishing.run_folder(folder, "r1")
    chips = storage.join(run, "chips-00000-of-00001.tfrecord")
    storage.write_bytes(chips, b"")
    errors = storage.join(run, commits.ERRORS)
    storage.write_text(errors, '{"status": "failed"}\n' * failed)
    step = commits.PublishChips(folder, "r1", {"pipeline": "chip"})
    [manifest] = step.process(summary(3, failed, mask_errors=mask_errors), [chips], [errors])
    expected = ["runs/r1/chips-00000-of-00001.tfrecord"] + (["runs/r1/errors.jsonl"] if listed else [])
    assert manifest["files"] == expected and storage.exists(errors) == listed
    assert publishing.read(folder, commits.CHIP_MANIFEST)["files"] == expected


def test_a_refused_chip_run_leaves_the_chip_set(tmp_path):
    folder = str(tmp_path / "chips")
    publishing.begin(folder, commits.CHIP_MANIFEST, "r1", "2026-06-01T00:00:00+00:00")
    before = publishing.read(folder, commits.CHIP_MANIFEST)
    step = commits.PublishChips(folder, "r1", {"pipeline": "chip"})
    with pytest.raises(RunFailed, match=f"The chip set in {folder} is unchanged. The error lines are in"):
        list(step.process(summary(0, failed=4), [], []))
    assert publishing.read(folder, commits.CHIP_MANIFEST) == before and "files" not in before

