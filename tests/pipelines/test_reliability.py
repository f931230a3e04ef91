"""Nothing lost, nothing doubled, nothing silently wrong: concurrent and killed runs, typos, foreign files.

Every case runs the real command (``python -m pipelines.cli``) in its own process, as a user or a
scheduler would, on the session's synthetic scenes and trained bundle.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import rasterio
import rasterio.warp

from pipelines.analysis import layout
from tests.conftest import RUNNER

DATE = "2026-06-01"


def cli(*args, **kwargs):
    """The command in a process of its own (for runs that race or are killed)."""
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def refused(capsys, *args) -> str:
    """Run the command in this process through the same entry point; it must exit 2 with one line and
    no traceback. Returns what it printed on stderr."""
    from pipelines.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(list(args))
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert "Traceback" not in stderr
    return stderr


def scan_args(scenes, bundle, out, *extra):
    path = scenes["folder"] / "synth_20260601_r0c0.tif"
    with rasterio.open(path) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return ["scan", f"--aoi={west + 0.001},{south + 0.001},{east - 0.001},{north - 0.001}", "--aoi_name", "c",
            "--scenes", str(path), "--bundle", bundle, "--output", str(out), "--scan_date", DATE, *RUNNER, *extra]


def readers_see(out: Path) -> int:
    """Rows a reader that globs every Parquet file under the output sees (the README's DuckDB query)."""
    if not list(out.rglob("*.parquet")):
        return 0
    return duckdb.connect().sql(f"select count(*) from read_parquet('{out}/**/*.parquet')").fetchall()[0][0]


def published(out: Path) -> dict:
    partition = Path(layout.partition(str(out), DATE, "c"))
    manifest = json.loads((partition / layout.MANIFEST).read_text())
    return {"manifest": manifest, "parts": sorted(str(p) for p in partition.glob("part-*.parquet"))}


def test_concurrent_scans_of_one_partition_leave_one_complete_output(scenes, simple_bundle, tmp_path):
    out = tmp_path / "scans"
    for attempt in range(2):
        runs = [cli(*scan_args(scenes, simple_bundle["path"], out)) for _ in range(2)]
        results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
        assert [rc for rc, _ in results] == [0, 0], results
        state = published(out)
        partition = Path(layout.partition(str(out), DATE, "c"))
        parts = [str(partition / f) for f in state["manifest"]["files"] if f.endswith(".parquet")]
        assert state["parts"] == parts, f"attempt {attempt}: the partition holds exactly the winner's files"
        assert readers_see(out) == state["manifest"]["inferred"] > 0
        assert all((partition / f).exists() for f in state["manifest"]["files"])


def test_a_killed_run_leaves_nothing_readers_pick_up_and_a_rerun_replaces(scenes, simple_bundle, tmp_path):
    out = tmp_path / "scans"
    first = cli(*scan_args(scenes, simple_bundle["path"], out))
    assert first.wait(timeout=300) == 0, first.stderr.read()
    good = readers_see(out)
    assert good > 0
    doomed = cli(*scan_args(scenes, simple_bundle["path"], out))
    staging = Path(layout.partition(str(out), DATE, "c")) / "_staging"
    deadline = time.time() + 240
    while not any(p.is_file() for p in staging.rglob("*")) and time.time() < deadline and doomed.poll() is None:
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert readers_see(out) == good, "a killed run must leave nothing a reader picks up"
    rerun = cli(*scan_args(scenes, simple_bundle["path"], out))
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()
    assert readers_see(out) == good == published(out)["manifest"]["inferred"]
    assert len(published(out)["parts"]) == 1


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
    assert message in refused(capsys, *scan_args(scenes, simple_bundle["path"], tmp_path / "scans", *extra))
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
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(simple_bundle["path"], bundle)
    data = (bundle / "model.keras").read_bytes()
    (bundle / "model.keras").write_bytes(data[: len(data) // 2])
    assert "model.keras: not a complete Keras file" in refused(capsys, *scan_args(scenes, str(bundle), tmp_path / "s"))
    args = scan_args(scenes, simple_bundle["path"], tmp_path / "s")
    args[args.index("--scenes") + 1] = str(tmp_path / "nothing-*.tif")
    assert "no scene matches" in refused(capsys, *args)
    assert "no scan output there" in refused(capsys, "query", "alerts", "--scans", str(tmp_path))


def test_chip_never_deletes_what_it_did_not_write(scenes, tmp_path):
    out = tmp_path / "chips"
    out.mkdir()
    theirs = {"chips-notes.txt": "notes", "errors-2025-analysis.csv": "a,b", "errors-old.jsonl": "{}",
              "chips-from-colleague.tfrecord": "not ours"}
    for name, text in theirs.items():
        (out / name).write_text(text)
    args = ["chip", "--scenes", str(scenes["folder"] / "synth_20260601_r0c0.tif"), "--output", str(out), *RUNNER]
    refusal = cli(*args)
    assert refusal.wait(timeout=120) == 2
    assert "holds files this tool did not write" in refusal.stderr.read() and not (out / "manifest.json").exists()
    for _ in range(2):  # with --overwrite, twice: the second run replaces the first run's files only
        run = cli(*args, "--overwrite")
        assert run.wait(timeout=300) == 0, run.stderr.read()
    assert {name: (out / name).read_text() for name in theirs} == theirs
    manifest = json.loads((out / "manifest.json").read_text())
    ours = sorted(str(p) for p in out.glob("chips-*.tfrecord") if p.name != "chips-from-colleague.tfrecord")
    assert ours == [str(out / f) for f in manifest["files"] if f.endswith(".tfrecord")]
