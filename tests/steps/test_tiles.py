"""The Tiles step on the FnApiRunner, from synthetic scenes with their UDM2s: tiles of the AOIs a scene
touches, a scene outside every AOI counted once as skipped, each tile's item naming the mask found when
the scene was enumerated, and a scene whose mask is there but unusable kept (its tiles cannot be screened
by clouds, and say why) where one without any mask fails."""

import apache_beam as beam
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box

from pipelines.geo.aoi import Aoi
from pipelines.geo.tiling import TileSpec
from pipelines.sources import synthetic
from pipelines.sources.base import DateRange, SceneItem
from pipelines.sources.reader import ReadOptions
from pipelines.steps.accounting import FAILED, SKIPPED
from pipelines.steps.tiles import Tiles
from tests.sources.test_masks import REAL_UDM2


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    spec = synthetic.SceneSpec(seed=11, width=512, height=512)
    written = synthetic.write_scene(spec, tmp_path_factory.mktemp("scene"))
    with rasterio.open(written["scene"]) as src:
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return {"item": SceneItem(written["scene"], spec.scene_id), "udm2": written["udm2"], "bounds": bounds}


TILES: list = []
OUTCOMES: list = []


def _tile(item):
    TILES.append((item.tile.tile_id, item.aoi, item.source.mask, item.mask, item.mask_error))


def _outcome(outcome):
    OUTCOMES.append(outcome)


def run_tiles(items, spec, aois=None, when=None):
    """``(tiles, outcomes)`` as lists: Tiles on the FnApiRunner, collected in this process (module-level
    functions travel by reference, so their lists are these)."""
    TILES.clear()
    OUTCOMES.clear()
    with beam.Pipeline("FnApiRunner") as pipeline:
        out = pipeline | beam.Create(items) | Tiles(spec, ReadOptions(), aois, fractions=True, when=when)
        _ = out["tiles"] | "CollectTiles" >> beam.Map(_tile)
        _ = out["outcomes"] | "CollectOutcomes" >> beam.Map(_outcome)
    return list(TILES), list(OUTCOMES)


def test_tiles_of_the_aois_a_scene_touches_with_its_mask_found_once(scene):
    west, south, east, north = scene["bounds"]
    middle = (west + east) / 2
    aois = [Aoi("left", box(west, south, middle - 1e-4, north)), Aoi("far", box(10, 10, 11, 11))]
    tiles, outcomes = run_tiles([scene["item"]], TileSpec(min_valid_fraction=0.0), aois)
    assert sorted(t[0].rsplit("/", 2)[-1] for t in tiles) == ["0", "0"]  # the left column of 2 x 2 tiles
    assert {t[1] for t in tiles} == {"left"} and {t[2] for t in tiles} == {scene["udm2"]}
    assert all(t[3] is not None and t[4] is None for t in tiles) and outcomes == []
    tiles, outcomes = run_tiles([scene["item"]], TileSpec(), [aois[1]])
    assert tiles == [] and [(o["status"], o["reason"]) for o in outcomes] == [
        (SKIPPED, "outside: the scene touches no AOI")]


def test_a_mask_that_cannot_be_used_keeps_the_tiles_unscreened_where_no_mask_fails_the_scene(scene, tmp_path):
    spec = synthetic.SceneSpec(seed=12, width=256, height=256)
    odd = synthetic.write_scene(spec, tmp_path / "odd")
    (tmp_path / "odd" / f"{spec.scene_id}_udm2.tif").unlink()
    (tmp_path / "odd" / f"{spec.scene_id}_udm2.tif").symlink_to(REAL_UDM2)  # another grid
    bare = synthetic.write_scene(synthetic.SceneSpec(seed=13, width=256, height=256), tmp_path / "bare")
    (tmp_path / "bare" / f"{synthetic.SceneSpec(seed=13).scene_id}_udm2.tif").unlink()
    screened = TileSpec(skip_cloudier_than=0.2)
    tiles, outcomes = run_tiles([SceneItem(odd["scene"], "odd"), SceneItem(bare["scene"], "bare")], screened)
    assert len(tiles) == 1 and tiles[0][3] is None and "is not its scene's" in tiles[0][4]
    [failed] = outcomes
    assert (failed["status"], failed["scene_id"]) == (FAILED, "bare")
    assert "has no cloud mask, so its tiles cannot be screened" in failed["reason"]


def test_a_scene_named_for_no_day_is_chosen_by_its_headers_time_at_each_end_of_acquired(scene):
    """Its name says no day (a synthetic scene's, a renamed Planet file), so ``--acquired`` kept it whatever
    its time: the scene was chipped and scanned outside the range asked for. Its header says 2026-06-01
    (13:30 UTC); both ends of a range hold their day."""
    with rasterio.open(scene["item"].uri) as src:
        assert src.tags()["acquired"].startswith("2026-06-01T13:30")
    for text, kept in (("2026-06-01", True), ("2026-05-01/2026-06-01", True), ("2026-06-01/", True),
                       ("2026-06-02/2026-07-01", False), ("/2026-05-31", False)):
        tiles, outcomes = run_tiles([scene["item"]], TileSpec(min_valid_fraction=0.0), when=DateRange.parse(text))
        assert bool(tiles) == kept, text
        assert [(o["status"], o["reason"]) for o in outcomes] == ([] if kept else [
            (SKIPPED, "acquired: 2026-06-01, outside --acquired")]), text
