"""The outcome ledger: counts, error lines, screening of real tiles, and a chip set published on a real Beam
run."""

import json
import re

import apache_beam as beam
import pytest

from pipelines.geo.grid import NativeGrid
from pipelines.sources.base import SceneItem
from pipelines.sources.masks import AUTO
from pipelines.sources.reader import SceneReader
from pipelines.steps import accounting, commits
from pipelines.steps.accounting import FAILED, OUTCOMES, SKIPPED, WRITTEN, outcome
from planet_core import publishing, storage
from planet_core.errors import RunFailed
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


def test_summary_counts_tiles_out_of_the_models_domain_and_kept_without_their_mask_apart():
    fn = accounting.SummarizeFn()
    acc = fn.create_accumulator()
    for item in [outcome(WRITTEN, "a", "u", "1", out_of_domain=True), outcome(WRITTEN, "a", "u", "2", mask_error="x"),
                 outcome(WRITTEN, "a", "u", "3", mask_error="y"), outcome(WRITTEN, "a", "u", "4", out_of_domain=False)]:
        fn.add_input(acc, item)
    summary = fn.extract_output(acc)
    assert (summary["written"], summary["out_of_domain"], summary["mask_errors"]) == (4, 1, 2)


def _summary(written=0, skipped=0, failed=0, **reasons):
    by = {SKIPPED: {}, FAILED: {}}
    for key, (status, n) in reasons.items():
        by[status][key] = n
    return {"enumerated": written + skipped + failed, WRITTEN: written, SKIPPED: skipped, FAILED: failed,
            "skipped_reasons": by[SKIPPED], "failed_reasons": by[FAILED]}


@pytest.mark.parametrize(("summary", "expected"), [
    (_summary(written=1, failed=1, read=(FAILED, 1)), None),  # one of two failed: a success with error lines
    (_summary(written=1), None),
    (_summary(failed=2, read=(FAILED, 2)), "x: every one of 2 items failed; commonest reasons: read (2)"),
    (_summary(skipped=1, failed=1, read=(FAILED, 1), nodata=(SKIPPED, 1)),
     "x: nothing was written (1 skipped, 1 failed of 2); commonest reasons: read (1); nodata (1)"),
    (_summary(), "x: no tile to read (the scenes touch no tile of the area asked for); nothing was written"),
    (_summary(failed=9, a=(FAILED, 1), b=(FAILED, 5), c=(FAILED, 2), d=(FAILED, 1)),
     "x: every one of 9 items failed; commonest reasons: b (5); c (2); a (1)"),
])
def test_a_run_is_refused_when_it_failed_every_item_or_wrote_nothing(summary, expected):
    """Each cut at its edge: one success among failures is a success; the reasons named are the three
    commonest, commonest first."""
    assert accounting.refusal(summary, "x") == expected


def test_screen_tiles_on_a_partly_corrupt_scene():
    source = SceneItem(str(RASTERS / "corrupt.tif"), "corrupt")
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


def publish_run(out, run_id, items, started="2026-11-25T11:00:00+00:00"):
    """A real Beam run that writes one chip file and the error lines into its run folder, then publishes
    them (the chip pipeline's last steps)."""
    folder = publishing.begin(out, "manifest.json", run_id, started)
    with beam.Pipeline(argv=RUNNER) as pipeline:
        written = (pipeline | "Chips" >> beam.Create(["x"])
                   | beam.io.WriteToText(storage.join(folder, "chips"), file_name_suffix=".tfrecord"))
        summary, errors = (pipeline | "Outcomes" >> beam.Create(items)
                           | accounting.Account(storage.join(folder, commits.ERRORS)))
        _ = summary | beam.ParDo(commits.PublishChips(out, run_id, {"pipeline": "test"}),
                                 beam.pvalue.AsList(written), beam.pvalue.AsList(errors))
    return publishing.read(out, "manifest.json")


@pytest.mark.slow  # runs a Beam pipeline
def test_publish_lists_the_runs_chips_and_error_lines_and_replaces_the_last_set(tmp_path):
    out = str(tmp_path / "chips")
    items = [outcome(WRITTEN, "a", "u", "1"), outcome(FAILED, "a", "u", "2", "read: broken")]
    first = publish_run(out, "20261125T110000-1a2b3c", items)
    assert first["files"] == ["runs/20261125T110000-1a2b3c/chips-00000-of-00001.tfrecord",
                              "runs/20261125T110000-1a2b3c/errors.jsonl"]
    assert json.loads(storage.read_text(storage.join(out, first["files"][1])))["reason"] == "read: broken"
    second = publish_run(out, "20261125T120000-0a0b0c", items[:1], started="2026-11-25T12:00:00+00:00")
    assert second["files"] == ["runs/20261125T120000-0a0b0c/chips-00000-of-00001.tfrecord"], "no errors, no file"
    assert second["replaced"] == {"20261125T110000-1a2b3c": {
        "files": first["files"], "replaced_at": second["replaced"]["20261125T110000-1a2b3c"]["replaced_at"]}}, \
        "the replaced set is kept a while for its readers"
    assert (second["written"], second["failed"], second["runs"]) == (1, 0, {})


@pytest.mark.slow  # runs a Beam pipeline
@pytest.mark.parametrize("items, message", [
    ([outcome(FAILED, "a", "u", "1", "read: broken"), outcome(FAILED, "b", "v", "2", "read: broken")],
     "every one of 2 items failed; commonest reasons: read (2)"),
    ([outcome(SKIPPED, "a", "u", "1", "nodata: valid fraction 0.0 below 0.5")],
     "nothing was written (1 skipped, 0 failed of 1); commonest reasons: nodata (1)"),
])
def test_a_run_that_wrote_nothing_changes_nothing(tmp_path, items, message):
    out = str(tmp_path / "chips")
    good = publish_run(out, "20261125T110000-1a2b3c", [outcome(WRITTEN, "a", "u", "1")])
    with pytest.raises(RunFailed, match=re.escape(message)):
        publish_run(out, "20261125T120000-0a0b0c", items, started="2026-11-25T12:00:00+00:00")
    after = publishing.read(out, "manifest.json")
    assert after["files"] == good["files"] and all(storage.exists(storage.join(out, f)) for f in good["files"])
    assert "20261125T120000-0a0b0c" in after["runs"], "the refused run stays registered (its error lines)"


@pytest.mark.slow  # runs a Beam pipeline
def test_a_copied_folders_rerun_never_reaches_back_into_the_original(tmp_path):
    import shutil

    items = [outcome(WRITTEN, "a", "u", "1")]
    original, copy = str(tmp_path / "original"), str(tmp_path / "copy")
    first = publish_run(original, "20261125T110000-1a2b3c", items)
    shutil.copytree(original, copy)
    publish_run(copy, "20261125T120000-0a0b0c", items, started="2026-11-25T12:00:00+00:00")
    assert all(storage.exists(p) for p in publishing.paths(original, first["files"])), "the original is intact"
    manifest = publishing.read(copy, "manifest.json")
    assert manifest["files"] != first["files"] and manifest["replaced"]["20261125T110000-1a2b3c"]["files"] == \
        first["files"], "the copy switched to its own run, keeping the copied set a while for its readers"
    # a manifest of the old form (full paths) is honoured only inside its own folder
    assert publishing.paths(
        copy, [f"{original}/chips-x.tfrecord", f"{copy}/chips-y.tfrecord", "../x", "/etc/passwd"]
    ) == [f"{copy}/chips-y.tfrecord"]


def _rows_scene(folder, data_rows, clear_rows):
    """A real 4-tile GeoTIFF (native 256-px tiles side by side) whose tile ``i`` has data (nodata 0) in its
    first ``data_rows[i]`` rows, and its UDM2: clear in the first ``clear_rows[i]`` rows, cloud below."""
    import numpy as np
    import rasterio
    from affine import Affine

    data = np.zeros((3, 256, 1024), np.uint16)
    clear = np.zeros((256, 1024), np.uint8)
    for i, (n, c) in enumerate(zip(data_rows, clear_rows)):
        data[:, :n, i * 256:(i + 1) * 256] = 1000
        clear[:c, i * 256:(i + 1) * 256] = 1
    profile = {"driver": "GTiff", "width": 1024, "height": 256, "crs": "EPSG:32721",
               "transform": Affine(3, 0, 500_000, 0, -3, 8_894_000)}
    folder.mkdir()
    scene, mask = folder / "scene.tif", folder / "scene_udm2.tif"
    with rasterio.open(scene, "w", count=3, nodata=0, dtype="uint16", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                           rasterio.enums.ColorInterp.blue]
    udm2 = np.zeros((8, 256, 1024), np.uint8)
    udm2[0], udm2[5] = clear, 1 - clear  # UDM2 band 1: clear; band 6: cloud
    with rasterio.open(mask, "w", count=8, dtype="uint8", **profile) as dst:
        dst.write(udm2)
    source = SceneItem(str(scene), "s", mask=str(mask))
    with SceneReader(source) as reader:
        grid = NativeGrid("s", reader.crs, tuple(reader.transform)[:6], 1024, 256)
    return source, [grid.tile(r, c) for r, c in grid.tiles()]


def _kept(source, tiles, min_valid, skip_cloudier=None):
    results = accounting.screen_tiles(source, tiles, lambda: SceneReader(source, cloud_mask=AUTO), min_valid,
                                      lambda reader, read: [read.tile.tile_id], skip_cloudier)
    return [int(r.rsplit("/", 1)[1]) for r in results if isinstance(r, str)]


def test_screening_cuts_at_the_valid_and_cloudy_shares_inclusively(tmp_path):
    """Tiles with 128, 127, 129 and 256 of 256 rows: at ``min_valid_fraction`` 0.5 the tile exactly at 0.5
    is kept and the one a row under it skipped; at ``skip_cloudier_than`` 0.5, with data everywhere, the
    tile exactly half not clear is kept and the one a row cloudier skipped."""
    rows = [128, 127, 129, 256]
    source, tiles = _rows_scene(tmp_path / "valid", rows, [256] * 4)
    assert _kept(source, tiles, 0.5) == [0, 2, 3]
    assert _kept(source, tiles, 0.5 + 1 / 256) == [2, 3] and _kept(source, tiles, 0.5 - 1 / 256) == [0, 1, 2, 3]
    source, tiles = _rows_scene(tmp_path / "cloud", [256] * 4, rows)
    assert _kept(source, tiles, 0.0, 0.5) == [0, 2, 3]  # 128 rows clear: 0.5 not clear, at the cut: kept
    assert _kept(source, tiles, 0.0, 0.5 - 1 / 256) == [2, 3]
    assert _kept(source, tiles, 0.0, 0.5 + 1 / 256) == [0, 1, 2, 3]
    assert _kept(source, tiles, 0.0) == [0, 1, 2, 3]  # no cut given: every tile
