"""The outcome ledger: counts, error lines, screening of real tiles, and the manifest on a real Beam run."""

import json

import apache_beam as beam

from pipelines.geo.grid import NativeGrid
from pipelines.geo.scenes import SceneReader, SceneSource
from pipelines.steps import accounting
from pipelines.steps.accounting import FAILED, OUTCOMES, SKIPPED, WRITTEN, outcome
from planet_model import storage
from tests.conftest import RASTERS, RUNNER


def test_summary_counts_totals_reasons_and_scenes():
    fn = accounting.SummarizeFn()
    items = [outcome(WRITTEN, "a", "u", "1"), outcome(WRITTEN, "a", "u", "2"),
             outcome(SKIPPED, "a", "u", "3", "nodata: valid fraction 0.1 below 0.5"),
             outcome(FAILED, "b", "v", None, "scene: cannot open")]
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for i, item in enumerate(items):
        fn.add_input(halves[i % 2], item)
    summary = fn.extract_output(fn.merge_accumulators(halves))
    assert (summary["enumerated"], summary["written"], summary["skipped"], summary["failed"]) == (4, 2, 1, 1)
    assert summary["skipped_reasons"] == {"nodata": 1} and summary["failed_reasons"] == {"scene": 1}
    assert summary["scenes"] == {"a": {WRITTEN: 2, SKIPPED: 1, FAILED: 0}, "b": {WRITTEN: 0, SKIPPED: 0, FAILED: 1}}
    assert summary["scene_uris"] == {"a": "u", "b": "v"}  # where each scene was read: the report's pictures


def test_screen_tiles_on_a_partly_corrupt_scene():
    source = SceneSource(str(RASTERS / "corrupt.tif"), "corrupt")
    with SceneReader(source) as reader:
        grid = NativeGrid("corrupt", reader.crs, tuple(reader.transform)[:6], 1024, 1024)
    tiles = [grid.tile(r, c) for r, c in grid.tiles()]
    results = list(accounting.screen_tiles(source, tiles, lambda: SceneReader(source), 0.5,
                                           lambda reader, read: [(read.tile.tile_id, read.image.shape)]))
    kept = [r for r in results if isinstance(r, tuple)]
    lost = [r.value for r in results if isinstance(r, beam.pvalue.TaggedOutput)]
    assert len(kept) == 12 and all(shape == (256, 256, 3) for _, shape in kept)
    assert len(lost) == 4 and all(r["status"] == FAILED and r["reason"].startswith("read:") and r["window"]
                                  for r in lost)
    assert {r.tag for r in results if isinstance(r, beam.pvalue.TaggedOutput)} == {OUTCOMES}


def publish_run(out, run_id, items):
    """A real Beam run that stages one output file and the error lines, then publishes them."""
    with beam.Pipeline(argv=RUNNER) as pipeline:
        written = (pipeline | "Chips" >> beam.Create(["x"])
                   | beam.io.WriteToText(storage.join(accounting.staging(out, run_id), f"chips-{run_id}"),
                                         file_name_suffix=".tfrecord" + accounting.STAGED))
        summary, errors = pipeline | "Outcomes" >> beam.Create(items) | accounting.Account(out, run_id)
        _ = summary | beam.ParDo(accounting.Publish(out, "manifest.json", {"run_id": run_id}),
                                 beam.pvalue.AsList(written), beam.pvalue.AsList(errors))
    return json.loads(storage.read_text(storage.join(out, "manifest.json")))


def test_publish_replaces_only_what_the_manifest_it_replaced_listed(tmp_path):
    out = str(tmp_path)
    items = [outcome(WRITTEN, "a", "u", "1"), outcome(FAILED, "a", "u", "2", "read: broken block")]
    first = publish_run(out, "20261125T110000-1a2b3c", items)
    assert (first["enumerated"], first["written"], first["failed"]) == (2, 1, 1)
    assert first["files"] == ["chips-20261125T110000-1a2b3c-00000-of-00001.tfrecord",
                              "errors-20261125T110000-1a2b3c-00000-of-00001.jsonl"]  # names: the folder may move
    first_paths = accounting.manifest_paths(out, first)
    [line] = storage.read_text(first_paths[1]).splitlines()
    assert json.loads(line)["reason"] == "read: broken block"
    import os

    theirs = [storage.join(out, "chips-from-a-colleague.tfrecord"), storage.join(out, "part-stream-20260601T000000-0-x.parquet")]
    orphan = storage.join(out, "chips-20260101T000000-abcdef-00000-of-00001.tfrecord")  # a killed run moved it in
    for path in (*theirs, orphan):
        storage.write_text(path, "old")
        old = os.path.getmtime(path) - (accounting.STALE_HOURS + 1) * 3600
        os.utime(path, (old, old))
    second = publish_run(out, "20261125T120000-0a0b0c", items)
    assert all(not storage.exists(p) for p in first_paths)
    assert all(storage.exists(p) for p in accounting.manifest_paths(out, second))
    assert all(storage.exists(p) for p in theirs), "never delete what we did not write, however old"
    assert not storage.exists(orphan), "an old run file no manifest lists is a killed run's"
    assert storage.glob(storage.join(out, accounting.STAGING, "**")) == []


def test_a_killed_runs_staging_is_invisible_and_cleared_once_stale(tmp_path):
    import os

    out = str(tmp_path)
    left = storage.join(accounting.staging(out, "killed"), "part-killed-00000-of-00001.parquet" + accounting.STAGED)
    storage.write_text(left, "half a file")
    fresh = storage.join(accounting.staging(out, "running"), "part-running-00000-of-00001.parquet" + accounting.STAGED)
    storage.write_text(fresh, "a concurrent run")
    old = os.path.getmtime(left) - (accounting.STALE_HOURS + 1) * 3600
    os.utime(left, (old, old))
    assert not [p for p in storage.glob(storage.join(out, "**")) if p.endswith(".parquet")]
    assert accounting.clear_stale_staging(out) == 1
    assert not storage.exists(left) and storage.exists(fresh)


def test_a_copied_folders_rerun_never_reaches_back_into_the_original(tmp_path):
    import shutil

    items = [outcome(WRITTEN, "a", "u", "1")]
    original, copy = str(tmp_path / "original"), str(tmp_path / "copy")
    first = publish_run(original, "20261125T110000-1a2b3c", items)
    shutil.copytree(original, copy)
    publish_run(copy, "20261125T120000-0a0b0c", items)
    assert all(storage.exists(p) for p in accounting.manifest_paths(original, first)), "the original is intact"
    assert not any(storage.exists(p) for p in accounting.manifest_paths(copy, first)), "the copy was replaced"
    # a manifest of the old form (full paths) is honoured only inside its own folder
    assert accounting.manifest_paths(copy, {"files": [f"{original}/chips-x.tfrecord", f"{copy}/chips-y.tfrecord"]}) == [
        f"{copy}/chips-y.tfrecord"]
