"""Nothing lost, nothing doubled, nothing silently wrong: failed, empty, killed and concurrent runs, a full disk,
typos, foreign files.

Every case runs the real command (``python -m pipelines.cli``) in its own process, as a user or a
scheduler would, on the session's synthetic scenes and trained bundle. Readers read what a user's reader
reads: the scans table's current snapshot, a chip set's manifest, a report folder's current version.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio
import rasterio.warp

from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from planet_model import data, records
from tests import tables
from tests.conftest import RUNNER, refused, run_here

DATE = "2026-06-01"
SCENE = "synth_20260601_r0c0"


@pytest.fixture(autouse=True)
def own_temporaries(tmp_path, monkeypatch):
    """Commands started here keep their temporary folders (Beam's, DuckDB's spill) in the test's own: one this
    test kills cannot remove them, and they would gather in the machine's /tmp."""
    folder = tmp_path / "temporaries"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))


def cli(*args, **kwargs):
    """The command in a process of its own (for runs that race or are killed)."""
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finished(process, timeout=300):
    """``(exit code, stderr)`` of a process run to its end."""
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def scan_args(scenes, bundle, out, *extra, scene=None):
    path = scene or scenes["folder"] / f"{SCENE}.tif"
    with rasterio.open(scenes["folder"] / f"{SCENE}.tif") as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return ["scan", f"--aoi={west + 0.001},{south + 0.001},{east - 0.001},{north - 0.001}", "--aoi_name", "c",
            "--scenes", str(path), "--bundle", bundle, "--output", str(out), "--scan_date", DATE, *RUNNER, *extra]


def rows_seen(out: Path) -> list[tuple]:
    """What a reader of the scans sees: (tile, scene) of each row of the current snapshot, sorted."""
    if not (out / "catalog.db").exists():
        return []
    return sorted((r["tile_id"], r["scene_id"]) for r in tables.read_rows(out))


def one_line_failure(code, err, *words):
    """Exit 1 and one line saying why, without a traceback."""
    lines = [line for line in err.strip().splitlines() if line.startswith("planet-tiles ")]
    assert code == 1 and lines and all(w in lines[-1] for w in words), err
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def good(scenes, simple_bundle, tmp_path_factory):
    """A scans folder holding one good scan of the partition, and what a reader sees of it."""
    out = tmp_path_factory.mktemp("good") / "scans"
    code, err = run_here(*scan_args(scenes, simple_bundle["path"], out))
    assert code == 0, err
    seen = rows_seen(out)
    assert len(seen) > 0
    return {"out": out, "rows": seen}


def copy_of(good, tmp_path) -> Path:
    """The good scan's rows in a scans table of the test's own."""
    return tables.copy_scans(good["out"], tmp_path / "scans")


def test_concurrent_scans_of_one_partition_leave_one_complete_output_and_readers_one_snapshot(scenes, simple_bundle,
                                                                                             good, tmp_path):
    """Two scans replace the partition at once, twice: each time the table ends with exactly one run's rows,
    the commits one after another. Queries run over and over meanwhile: each sees exactly the rows of one
    snapshot (never the old and the new files together)."""
    out = copy_of(good, tmp_path)
    counts = []
    for attempt in range(2):
        runs = [cli(*scan_args(scenes, simple_bundle["path"], out)) for _ in range(2)]
        while any(run.poll() is None for run in runs):
            result = subprocess.run([sys.executable, "-m", "pipelines.cli", "query", "latest_state", "--scans",
                                     str(out)], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            counts.append(len(result.stdout.splitlines()))
        results = [finished(run) for run in runs]
        assert [code for code, _ in results] == [0, 0], results
        assert rows_seen(out) == good["rows"], f"attempt {attempt}: one run's rows, exactly"
    partitions = [c.partitions for c in scans.commits(Warehouse(str(out)))]
    assert partitions == [[(DATE, "c")]] * 5, "the seed and four replacing commits, one after another"
    assert counts and set(counts) == {len({tile for tile, _ in good["rows"]})}, counts


def _kill_when(process, ready, deadline=240, every=0.01):
    """SIGKILL ``process`` as soon as ``ready()`` (or at once when it is None), asked ``every`` seconds;
    whether it was still running."""
    stop = time.time() + deadline
    while ready is not None and not ready() and process.poll() is None and time.time() < stop:
        time.sleep(every)
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return alive


def _commits(out: Path) -> int:
    return len(scans.commits(Warehouse(str(out))))


@pytest.mark.parametrize("moment", ["at start", "while writing data", "while committing", "after committing"])
def test_a_killed_scan_leaves_readers_one_complete_snapshot_and_a_rerun_replaces(scenes, simple_bundle, good,
                                                                                tmp_path, moment):
    out = copy_of(good, tmp_path)
    data = out / "tile_labels" / "data"
    metadata = out / "tile_labels" / "metadata"
    files_before = set(data.rglob("*")) | set(metadata.rglob("*"))
    commits_before = _commits(out)
    ready = {"at start": None,
             "while writing data": lambda: any(p.is_file() for p in set(data.rglob("*")) - files_before),
             "while committing": lambda: any(p.suffix == ".avro" for p in set(metadata.rglob("*")) - files_before),
             "after committing": lambda: _commits(out) > commits_before}
    doomed = cli(*scan_args(scenes, simple_bundle["path"], out))
    # Reading the table's commits is a catalog query: asked every 10 ms it took the CPU from the scan (57 s).
    _kill_when(doomed, ready[moment], every=0.2 if moment == "after committing" else 0.01)
    assert rows_seen(out) == good["rows"], "the old snapshot or the new one, whole; never both, never neither"
    code, err = run_here(*scan_args(scenes, simple_bundle["path"], out))
    assert code == 0, err
    assert rows_seen(out) == good["rows"], "a re-run replaces: no orphan of the killed run is ever read"


def test_maintain_at_its_shortest_setting_during_a_scan_sweeps_only_the_stale(scenes, simple_bundle, good,
                                                                               tmp_path):
    """A scheduler's ``maintain`` running while a scan writes: a killed run's two-day-old file goes, the scan's
    own files (Beam's temporaries, its data file before the commit names it) stay, and the scan commits
    whole. At ``--orphan_days 0``, now refused, a sweep deleted the scan's temporary file and failed it."""
    out = copy_of(good, tmp_path)
    data = out / "tile_labels" / "data"
    stale = data / f"scan_date={DATE}" / "aoi=c" / "part-killed.parquet"
    stale.write_bytes(b"a killed run's data file")
    then = time.time() - 2 * 86400
    os.utime(stale, (then, then))
    before = set(data.rglob("*"))
    running = cli(*scan_args(scenes, simple_bundle["path"], out))
    during = 0  # sweeps while the scan had files of its own on disk
    while running.poll() is None:
        staged = any(p.is_file() for p in set(data.rglob("*")) - before)
        code, err = run_here("maintain", "--scans", str(out), "--orphan_days", "1", "--keep_days", "0")
        assert code == 0, err
        during += staged
    code, err = finished(running)
    assert code == 0, err
    assert during > 0, "a sweep ran while the scan's files were uncommitted"
    assert not stale.exists() and rows_seen(out) == good["rows"]
    snapshot = scans.snapshot(Warehouse(str(out)))
    assert all(os.path.exists(f) for f in snapshot.files), "the scan's commit names only files that are there"


def truncated_copies(scenes, folder, n):
    """``n`` copies of the scene cut to a third of their bytes (a download that broke off)."""
    source = scenes["folder"] / f"{SCENE}.tif"
    paths = []
    for i in range(n):
        path = folder / f"{SCENE}-{i}.tif"
        path.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
        paths.append(path)
    return paths


def test_a_scan_whose_every_scene_fails_leaves_the_previous_output(scenes, simple_bundle, good, tmp_path, capsys):
    out = copy_of(good, tmp_path)
    (one,) = truncated_copies(scenes, tmp_path, 1)
    assert "cannot open" in refused(capsys, *scan_args(scenes, simple_bundle["path"], out, scene=one))
    args = scan_args(scenes, simple_bundle["path"], out)
    at = args.index("--scenes") + 1
    args[at:at + 1] = [str(p) for p in truncated_copies(scenes, tmp_path, 2)]
    code, err = run_here(*args)
    one_line_failure(code, err, "every one of 2 items failed", "scans table is unchanged")
    assert rows_seen(out) == good["rows"]


def test_a_scan_whose_aoi_touches_no_scene_changes_nothing_and_exits_1(scenes, simple_bundle, good, tmp_path):
    out = copy_of(good, tmp_path)
    args = scan_args(scenes, simple_bundle["path"], out)
    args[1] = "--aoi=10,10,10.01,10.01"
    code, err = run_here(*args)
    one_line_failure(code, err, "touches none of the 1 scenes", "unchanged")
    assert rows_seen(out) == good["rows"]


def _tmpfs(path: Path, size: str) -> bool:
    """A small RAM disk at ``path`` (needs root, as CI has); False where it cannot be made."""
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with one file; return it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


@pytest.fixture()
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _tmpfs(disk, "12m"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the full-disk cases need a tmpfs")
        pytest.skip("mounting a small disk needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_during_a_scan_is_one_line_and_changes_nothing(scenes, simple_bundle, good, small_disk):
    out = tables.copy_scans(good["out"], small_disk / "scans")
    filler = fill(small_disk)
    code, err = run_here(*scan_args(scenes, simple_bundle["path"], out))
    one_line_failure(code, err, "No space left on device")
    filler.unlink()
    assert rows_seen(out) == good["rows"]


def test_a_full_disk_during_a_report_is_one_line_and_keeps_the_report(good, small_disk):
    report = small_disk / "report"
    code, err = run_here("report", "--scans", str(good["out"]), "--output", str(report), "--no_images")
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in (report / "current").iterdir()}
    fill(small_disk)
    code, err = run_here("report", "--scans", str(good["out"]), "--output", str(report), "--no_images")
    one_line_failure(code, err, "No space left on device")
    assert {p.name: p.read_bytes() for p in (report / "current").iterdir()} == before
    assert [p.name for p in (report / "runs").iterdir()] == [(report / "current").resolve().name]


def test_a_full_disk_during_an_evaluation_is_one_line_and_keeps_the_evaluation(simple_bundle, small_disk):
    """An evaluation that cannot write its figures fails in one line (exit 1), and the folder's published
    evaluation stays as it was, the failed run's folder gone with it."""
    out = small_disk / "eval"
    evaluation = ("evaluate", "--bundle", simple_bundle["path"], "--data", *simple_bundle["data"], "--output", str(out))
    code, err = run_here(*evaluation)
    assert code == 0, err
    before = {p.relative_to(out / "current").as_posix(): p.read_bytes()
              for p in (out / "current").rglob("*") if p.is_file()}
    fill(small_disk)
    code, err = run_here(*evaluation)
    one_line_failure(code, err, "No space left on device")
    assert {p.relative_to(out / "current").as_posix(): p.read_bytes()
            for p in (out / "current").rglob("*") if p.is_file()} == before
    assert [p.name for p in (out / "runs").iterdir()] == [(out / "current").resolve().name]


def test_a_full_disk_during_an_export_is_one_line_and_keeps_the_file_it_would_replace(good, small_disk):
    """GDAL's write errors are not OSErrors: a full disk was a traceback. The file --overwrite would replace
    stays whole, and nothing is left beside it."""
    out = small_disk / "scans.geojson"
    code, err = run_here("export", "tile_labels", "--scans", str(good["out"]), "--output", str(out))
    assert code == 0, err
    before = out.read_bytes()
    filler = fill(small_disk)
    code, err = run_here("export", "tile_labels", "--scans", str(good["out"]), "--output", str(out), "--overwrite")
    one_line_failure(code, err, f"{out} could not be written (no space left on the disk)", "nothing was written")
    filler.unlink()
    assert out.read_bytes() == before and sorted(p.name for p in small_disk.iterdir()) == ["scans.geojson"]


def _agree(report: Path) -> None:
    """The report's files are one version's: the page, the summary and the alert files say the same."""
    version = (report / "current").resolve()
    summary = json.loads((version / "summary.json").read_text())
    manifest = json.loads((report / "current.json").read_text())
    assert manifest["run_id"] == summary["version"] == version.name
    features = json.loads((version / "alerts.geojson").read_text())["features"]
    assert len(features) == summary["alerts"]
    assert sorted(f["properties"]["confidence"] for f in features if f["properties"]["status"] == "active") == sorted(
        level for level, n in summary["alerts_by_confidence"].items() for _ in range(n))
    page = (version / "report.html").read_text()
    assert f'id="alert-count">{summary["alerts"]}<' in page
    assert all((report / name).exists() for name in manifest["files"])


def test_concurrent_and_killed_reports_never_leave_files_that_disagree(good, tmp_path):
    report = tmp_path / "report"
    for highest in ("0.5", "0.99", "0.7"):  # different settings: the versions differ
        runs = [cli("report", "--scans", str(good["out"]), "--output", str(report), "--no_images",
                    "--highest_probability", value) for value in (highest, "0.9")]
        codes = [finished(run) for run in runs]
        assert all(code in (0, 1) for code, _ in codes) and any(code == 0 for code, _ in codes), codes
        for code, err in codes:
            if code:
                one_line_failure(code, err, "published first")
        _agree(report)
    doomed = cli("report", "--scans", str(good["out"]), "--output", str(report), "--no_images")
    _kill_when(doomed, lambda: len(list((report / "runs").glob("*/report.html"))) > 1)
    _agree(report)
    code, err = run_here("report", "--scans", str(good["out"]), "--output", str(report), "--no_images")
    assert code == 0, err
    _agree(report)
    manifest = json.loads((report / "current.json").read_text())
    assert {p.name for p in (report / "runs").iterdir()} == {manifest["run_id"], *manifest["replaced"]}, \
        "the killed one's folder is gone; earlier versions stay a while for their readers"


@pytest.mark.parametrize(("extra", "message"), [
    (["--scan-date", "2026-06-02"], "unrecognized argument --scan-date: did you mean --scan_date?"),
    (["--min_valid_fracton", "0.99"], "did you mean --min_valid_fraction?"),
    (["--batch_size", "0"], "--batch_size 0: must be a positive"),
    (["--grid", "WebMercatorQuad", "--zoom", "30"], "--zoom 30: must be between 0 and 24"),
    (["--zoom", "16"], "--zoom applies to --grid WebMercatorQuad"),
    (["--band_order", "blue,green,red,infrared"], "unknown band role"),
])
def test_bad_flags_are_refused_before_any_work_with_one_line(scenes, simple_bundle, tmp_path, capsys, extra,
                                                             message):
    stderr = refused(capsys, *scan_args(scenes, simple_bundle["path"], tmp_path / "scans", *extra))
    assert message in stderr and "the bundle was trained on" not in stderr, stderr  # it was said of every flag
    assert not (tmp_path / "scans").exists()


def test_scan_dates_must_be_dates(scenes, simple_bundle, tmp_path, capsys):
    args = scan_args(scenes, simple_bundle["path"], tmp_path / "scans")
    args[args.index("--scan_date") + 1] = "20260601"
    assert "--scan_date '20260601': write the date as YYYY-MM-DD" in refused(capsys, *args)


@pytest.mark.parametrize(("aoi", "message"), [
    ("{not json", "not valid GeoJSON"),
    ('{"type": "FeatureCollection", "features": []}', "no geometry"),
])
def test_bad_aoi_files_are_named(scenes, simple_bundle, tmp_path, capsys, aoi, message):
    path = tmp_path / "aoi.geojson"
    path.write_text(aoi)
    args = scan_args(scenes, simple_bundle["path"], tmp_path / "scans")
    args[1] = f"--aoi={path}"
    stderr = refused(capsys, *args)
    assert message in stderr and "aoi.geojson" in stderr


def test_a_truncated_model_a_missing_glob_and_an_empty_query_are_named(scenes, simple_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(simple_bundle["path"], bundle)
    model_file = simple_bundle["meta"].model_file
    model = (bundle / model_file).read_bytes()
    (bundle / model_file).write_bytes(model[: len(model) // 2])
    stderr = refused(capsys, *scan_args(scenes, str(bundle), tmp_path / "s"))
    assert f"{model_file}: not a complete Keras file" in stderr
    args = scan_args(scenes, simple_bundle["path"], tmp_path / "s")
    args[args.index("--scenes") + 1] = str(tmp_path / "nothing-*.tif")
    assert "no scene matches" in refused(capsys, *args)
    assert "no scans there" in refused(capsys, "query", "alerts", "--scans", str(tmp_path))


def chip_args(scenes, out, *extra):
    return ["chip", "--scenes", str(scenes["folder"] / f"{SCENE}.tif"), "--output", str(out), *RUNNER, *extra]


def test_chip_never_deletes_what_it_did_not_write(scenes, tmp_path):
    out = tmp_path / "chips"
    out.mkdir()
    theirs = {"chips-notes.txt": "notes", "errors-2025-analysis.csv": "a,b", "errors-old.jsonl": "{}",
              "chips-from-colleague.tfrecord": "not ours",
              # named exactly like a run's output of the earlier layout, three days old
              "chips-20261126T101010-abcdef-00000-of-00001.tfrecord": "a colleague's copy"}
    for name, text in theirs.items():
        (out / name).write_text(text)
        os.utime(out / name, (time.time() - 3 * 86400,) * 2)
    refusal = cli(*chip_args(scenes, out))
    code, err = finished(refusal, 120)
    assert code == 2 and "holds files this tool did not write" in err
    assert not (out / records.MANIFEST).exists()
    for _ in range(2):  # with --overwrite, twice: the second run replaces the first run's files only
        code, err = run_here(*chip_args(scenes, out, "--overwrite"))
        assert code == 0, err
    assert {name: (out / name).read_text() for name in theirs} == theirs
    manifest = json.loads((out / records.MANIFEST).read_text())
    listed = {str(out / f) for f in manifest["files"]}
    assert set(data.list_files(str(out))) == listed and all(Path(p).exists() for p in listed)
    kept = {str(out / f) for replaced in manifest["replaced"].values() for f in replaced["files"]}
    assert {str(p) for p in (out / "runs").rglob("*.tfrecord")} == listed | {f for f in kept if f.endswith(".tfrecord")}


def test_a_full_disk_during_chipping_is_one_line_and_keeps_the_set(scenes, small_disk):
    out = small_disk / "chips"
    code, err = run_here(*chip_args(scenes, out))
    assert code == 0, err
    good = json.loads((out / records.MANIFEST).read_text())["files"]
    fill(small_disk)
    code, err = run_here(*chip_args(scenes, out))
    one_line_failure(code, err, "No space left on device")
    assert json.loads((out / records.MANIFEST).read_text())["files"] == good
    assert data.list_files(str(out)) == [str(out / f) for f in good] and all((out / f).exists() for f in good)


def test_a_training_run_reading_a_chip_set_finishes_while_another_run_replaces_the_set(scenes, tmp_path):
    """Training reads its chip files again every epoch (no cache): a chip run that republishes the set
    meanwhile leaves the set training opened whole. Before replaced sets were kept a while, the next epoch
    died on a deleted file (TensorFlow's NotFoundError, a traceback)."""
    out = tmp_path / "chips"
    labelled = chip_args(scenes, out, "--labels", str(scenes["truth"]))
    code, err = run_here(*labelled)
    assert code == 0, err
    training = cli("train", "--data", str(out), "--output", str(tmp_path / "bundle"), "--arch", "simple_cnn",
                   "--head_epochs", "30", "--finetune_epochs", "0", "--cache", "none", "--batch_size", "8")
    history = tmp_path / "bundle.work" / "history-stage1.csv"
    stop = time.time() + 300
    while training.poll() is None and time.time() < stop and not (
            history.exists() and len(history.read_text().splitlines()) >= 2):
        time.sleep(0.1)
    assert training.poll() is None, ("training ended before the set was replaced", finished(training))
    code, err = run_here(*labelled)
    assert code == 0, err
    switched = len(history.read_text().splitlines())
    code, err = finished(training, 600)
    assert code == 0, err
    assert len(history.read_text().splitlines()) == 31 and switched <= 29, "epochs read the set after the switch"


def test_a_failed_or_killed_chip_run_leaves_the_set_and_training_reads_it(scenes, tmp_path):
    out = tmp_path / "chips"
    code, err = run_here(*chip_args(scenes, out))
    assert code == 0, err
    good = json.loads((out / records.MANIFEST).read_text())["files"]
    truncated = tmp_path / f"{SCENE}.tif"
    source = scenes["folder"] / f"{SCENE}.tif"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    code, err = run_here("chip", "--scenes", str(truncated), "--output", str(out), *RUNNER)
    one_line_failure(code, err, "every one of", "unchanged")
    assert json.loads((out / records.MANIFEST).read_text())["files"] == good
    doomed = cli(*chip_args(scenes, out))
    _kill_when(doomed, lambda: any((out / "runs").glob("*/*.tfrecord*")) and len(list((out / "runs").iterdir())) > 2)
    assert json.loads((out / records.MANIFEST).read_text())["files"] == good
    assert data.list_files(str(out)) == [str(out / f) for f in good], "the killed run's chips are not read"
    code, err = run_here(*chip_args(scenes, out))
    assert code == 0, err
    manifest = json.loads((out / records.MANIFEST).read_text())
    assert {p.name for p in (out / "runs").iterdir()} == {manifest["run_id"], *manifest["replaced"]}, \
        "the failed and the killed runs' folders went with the publish; the replaced set stays a while"


def test_a_chip_run_that_fails_after_publishing_keeps_its_published_set(scenes, tmp_path, status_lost_after_the_job):
    """Its crash handling removed the run's folder, which the manifest it had just published names: the set
    lost, training failing on missing files. Now the set stays, and the line says it is this run's."""
    out = tmp_path / "chips"
    code, err = run_here(*chip_args(scenes, out))
    assert json.loads((out / records.MANIFEST).read_text())["written"] > 0
    assert data.list_files(str(out)) and all(Path(p).exists() for p in data.list_files(str(out)))
    one_line_failure(code, err, "lost the job's status", "is this run's, published before it failed")


def test_a_scan_that_fails_after_committing_says_the_table_holds_its_rows(scenes, simple_bundle, tmp_path,
                                                                         status_lost_after_the_job):
    out = tmp_path / "scans"
    code, err = run_here(*scan_args(scenes, simple_bundle["path"], out))
    one_line_failure(code, err, "lost the job's status", "the scans table is this run's, published before it failed")
    assert rows_seen(out)


def _models(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.keras")}


def test_a_training_killed_as_its_model_lands_leaves_the_bundle_it_trains_over_whole(simple_bundle, tmp_path):
    """Training again into a bundle's folder, killed the moment its model file is written: the folder still
    holds the earlier bundle, whole and loadable (when the new model replaced ``model.keras`` before
    ``bundle.json``, the folder held one run's model beside the other's thresholds, refused by every reader).
    A later save into the folder keeps the model file it replaced (for scans that started with it) and
    deletes what the killed run left once it is a day old."""
    from planet_model import bundle
    from tests import bundles

    folder = tmp_path / "bundle"
    for attempt in range(3):  # the kill must land in the few ms between the model file and the switch
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(simple_bundle["path"], folder)
        earlier, before = bundle.read_metadata(str(folder)), _models(folder)
        training = cli("train", "--data", simple_bundle["data"][0], "--output", str(folder), "--arch", "simple_cnn",
                       "--head_epochs", "1", "--finetune_epochs", "0", "--input_size", "64",
                       "--workdir", str(tmp_path / f"work-{attempt}"))
        if _kill_when(training, lambda before=before: _models(folder) != before, every=0) and training.returncode == -9:
            break
    assert training.returncode == -9, "every run finished before it could be killed"
    meta = bundle.read_metadata(str(folder))
    assert meta == earlier and bundle.load_model(str(folder), meta) is not None
    left = set(_models(folder)) - {meta.model_file}
    assert left, "the killed run's model file was written"
    week_ago = time.time() - 7 * 86400
    for name in left | {p.name for p in folder.glob(".write-*")}:
        os.utime(folder / name, (week_ago, week_ago))
    _, later = bundles.tiny(folder)
    assert bundle.read_metadata(str(folder)) == later
    assert set(_models(folder)) == {later.model_file, earlier.model_file} and not list(folder.glob(".write-*"))


def test_a_second_training_given_the_same_work_folder_is_refused_while_the_first_runs(simple_bundle, tmp_path):
    """Two trainings into one bundle folder share its default work folder (``OUTPUT.work``): the second removed
    the first's checkpoints and appended its epochs to the first's history, so the first's bundle recorded
    both trainings' epochs. The second is now refused (exit 2, naming the folder) while the first holds it,
    and the first finishes with its own history."""
    from planet_model import bundle

    out = tmp_path / "bundle"
    args = ("train", "--data", simple_bundle["data"][0], "--output", str(out), "--arch", "simple_cnn",
            "--head_epochs", "6", "--finetune_epochs", "0", "--input_size", "64")
    first = cli(*args)
    deadline = time.time() + 120
    while not (tmp_path / "bundle.work" / "options.json").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    code, err = run_here(*args)  # this process is the second
    assert code == 2 and "another training is using it" in err, err
    assert first.poll() is None, "the first training ended before the second could try"
    code, err = finished(first)
    assert code == 0, err
    assert len(bundle.read_metadata(str(out)).training["history"]) == 6
    code, err = run_here(*args)  # free again once the first ended
    assert code == 0, err


def test_a_bundle_save_that_fails_before_its_switch_leaves_the_earlier_bundle_and_no_model_of_its_own(small_disk):
    """A full disk after the model file is written (the plots do not fit): the save fails on the disk's own
    error and the folder holds the earlier bundle as it was, without the failed run's model file."""
    from planet_model import bundle
    from tests import bundles

    folder = small_disk / "bundle"
    _, earlier = bundles.tiny(folder)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    filler = fill(small_disk)
    size = (folder / earlier.model_file).stat().st_size
    os.truncate(filler, filler.stat().st_size - size - 8192)  # room for a model file, not for a plot too
    with pytest.raises(OSError, match="No space left on device"):
        bundles.tiny(folder, gain=3.0, files={"training_curves.png": b"\0" * 65536})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert bundle.read_metadata(str(folder)) == earlier


def test_a_bundle_save_that_fails_at_its_switch_leaves_the_earlier_bundles_figures_as_they_were(tmp_path, monkeypatch):
    """The plots of a training are written before its switch: written under the plain names, a run that failed
    (or was killed) there left the earlier model with the new training's curves, which the report showed on
    its model card. Named by the version, the earlier bundle's figures stay its own and the failed run's go."""
    from planet_core import storage
    from planet_model import bundle
    from tests import bundles

    folder = tmp_path / "bundle"
    _, earlier = bundles.tiny(folder, files={"training_curves.png": b"earlier curves"})
    files = {p.name: p.read_bytes() for p in folder.iterdir()}

    def interrupted(*_):
        raise KeyboardInterrupt  # as a kill lands: after the figures, before bundle.json is replaced

    monkeypatch.setattr(storage, "swap", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bundles.tiny(folder, gain=3.0, files={"training_curves.png": b"later curves", "cooccurrence.png": b"x"})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert bundle.read_metadata(str(folder)) == earlier
    assert bundle.figures(str(folder), earlier) == {"training_curves.png": b"earlier curves"}
    monkeypatch.undo()
    with pytest.raises(ValueError, match="bundle figures are"):
        bundles.tiny(folder, files={"notes.png": b"x"})


def test_a_later_save_sweeps_figures_of_bundles_neither_current_nor_replaced_and_nothing_else(tmp_path):
    """Figures of bundles two saves back go once a day old, like their model files; those of the bundle in use
    and of the one it replaced stay, and so do files of names no bundle gives (a plain ``notes.png``, the
    plain-named figures of a bundle written before figures carried the version)."""
    from planet_model import bundle
    from tests import bundles

    folder = tmp_path / "bundle"
    _, first = bundles.tiny(folder, files={"training_curves.png": b"1"})
    (folder / "notes.png").write_bytes(b"mine")
    (folder / "cooccurrence.png").write_bytes(b"legacy")
    _, second = bundles.tiny(folder, gain=2.0, files={"training_curves.png": b"2"})
    week_ago = time.time() - 7 * 86400
    for path in folder.iterdir():
        os.utime(path, (week_ago, week_ago))
    _, third = bundles.tiny(folder, gain=3.0, files={"training_curves.png": b"3"})
    pngs = {p.name for p in folder.glob("*.png")}
    assert pngs == {f"training_curves-{second.version}.png", f"training_curves-{third.version}.png", "notes.png",
                    "cooccurrence.png"}, first.version
    assert bundle.figures(str(folder), third) == {"training_curves.png": b"3"}
    _, plain = bundles.tiny(folder, gain=4.0)  # a bundle saved without figures has none, whatever lies beside it
    assert plain.figures == {} and bundle.figures(str(folder), plain) == {}


@pytest.mark.slow  # two processes that each import TensorFlow (5 s): not for `make check`
def test_trainings_saving_into_one_folder_at_once_leave_a_whole_bundle_at_every_moment(tmp_path):
    """Two processes save bundles into one folder, again and again, while this one reads it: every read finds
    a whole bundle whose model file is the one its bundle.json names and is still there to load. Model files
    of bundles replaced go at a later save once a day old, but for the one it replaces."""
    from planet_model import bundle
    from tests import bundles

    folder = tmp_path / "bundle"
    bundles.tiny(folder)
    saver = ("import sys; sys.path.insert(0, {root!r}); from tests import bundles\n"
             "for i in range(6): bundles.tiny({folder!r}, gain={gain} + i)")
    root = str(Path(__file__).resolve().parents[2])
    writers = [subprocess.Popen([sys.executable, "-c", saver.format(root=root, folder=str(folder), gain=gain)],
                                stderr=subprocess.PIPE, text=True) for gain in (2.0, 10.0)]
    reads = 0
    while any(w.poll() is None for w in writers):
        meta = bundle.read_metadata(str(folder))  # checks that the model file is the one bundle.json names
        assert (folder / meta.model_file).exists()
        reads += 1
    assert [w.wait() for w in writers] == [0, 0], [w.stderr.read()[-2000:] for w in writers]
    assert reads > 10
    meta = bundle.read_metadata(str(folder))
    assert bundle.load_model(str(folder), meta) is not None and len(_models(folder)) == 13
    week_ago = time.time() - 7 * 86400
    for name in _models(folder):
        os.utime(folder / name, (week_ago, week_ago))
    _, last = bundles.tiny(folder, gain=20.0)
    assert set(_models(folder)) == {last.model_file, meta.model_file}


def test_an_evaluation_killed_or_raced_leaves_the_published_one_whole(simple_bundle, tmp_path):
    """``evaluate`` wrote each bundle's plots, then ``evaluation.json``, straight into its folder: a second
    evaluation killed as its first plot landed left its plot beside the first's numbers (on the old code
    the F2 curves were those of the other chips). Now each run writes a version of its own and switches the
    folder's manifest to it: the killed run changes nothing readers see, and of two runs at once the
    folder ends on one whole version, its files those the manifest lists."""
    from planet_model import evaluate

    out = tmp_path / "eval"
    bundle_args = ["evaluate", "--bundle", simple_bundle["path"], "--data", *simple_bundle["data"],
                   "--output", str(out)]
    code, err = run_here(*bundle_args)
    assert code == 0, err
    version = simple_bundle["meta"].version
    published = {p.relative_to(out / "current").as_posix(): p.read_bytes()
                 for p in (out / "current").rglob("*") if p.is_file()}
    assert set(published) == {"evaluation.json", f"{version}/f2_vs_threshold.png", f"{version}/cooccurrence.png"}

    for attempt in range(5):  # its plots land milliseconds before its switch: the kill may come too late
        first = json.loads((out / evaluate.CURRENT).read_text())["run_id"]
        doomed = cli(*bundle_args, "--split", "validation" if attempt % 2 == 0 else "all")  # other chips: other curves
        _kill_when(doomed, lambda first=first: any(p.parent.parent.name != first
                                                   for p in (out / "runs").glob(f"*/{version}/*.png")), every=0)
        if json.loads((out / evaluate.CURRENT).read_text())["run_id"] == first:
            break
        code, err = run_here(*bundle_args)  # it published (the kill may have landed before its link moved)
        assert code == 0, err
        published = {p.relative_to(out / "current").as_posix(): p.read_bytes()
                     for p in (out / "current").rglob("*") if p.is_file()}
    else:
        pytest.fail("every run published before it could be killed")
    assert {p.relative_to(out / "current").as_posix(): p.read_bytes()
            for p in (out / "current").rglob("*") if p.is_file()} == published

    racing = [cli(*bundle_args, "--split", split) for split in ("validation", "all")]
    assert [finished(p)[0] for p in racing] in ([0, 0], [0, 1], [1, 0]), [p.stderr for p in racing]
    manifest = json.loads((out / evaluate.CURRENT).read_text())
    current = out / "runs" / manifest["run_id"]
    assert (out / "current").resolve() == current.resolve()
    assert sorted(manifest["files"]) == sorted(p.relative_to(out).as_posix() for p in current.rglob("*") if p.is_file())
    assert {p.name for p in (out / "runs").iterdir()} == {manifest["run_id"], *manifest["replaced"]}, \
        "the killed run's folder went with the next publish"


def test_a_report_whose_folder_a_later_run_removed_while_it_wrote_says_it_was_superseded(good, tmp_path):
    """A run started later that publishes first removes the earlier run's folder (its output is older): the
    earlier run, stopped in the middle of a write meanwhile, failed on a vanished file (an errno line); now
    it says it was superseded, and the report is the later run's, whole."""
    for attempt in range(5):  # a write lasts milliseconds: a run may end before the stop lands in one
        report = tmp_path / f"report-{attempt}"
        args = ("report", "--scans", str(good["out"]), "--output", str(report), "--no_images")
        earlier = cli(*args)
        stop = time.time() + 120
        while earlier.poll() is None and time.time() < stop and not any((report / "runs").glob("*/.write-*")):
            pass
        earlier.send_signal(signal.SIGSTOP)
        if earlier.poll() is None:
            break
    assert earlier.poll() is None, ("every run ended before it could be stopped mid-write", finished(earlier))
    try:
        code, err = run_here(*args)
        assert code == 0, err
    finally:
        earlier.send_signal(signal.SIGCONT)
    one_line_failure(*finished(earlier), "published first")
    _agree(report)
