"""Cloud masks: UDM2s found beside their scene, read per tile through the same window or warp as the pixels;
UDM2 and SCL pixels counted as each kind's flags and classes say; masks of another grid refused.

The oracle is plain rasterio and numpy on the real PlanetScope UDM2 (and ``rasterio.warp.reproject`` for a
warped grid), the planted polygons for the synthetic scenes' masks, or pixels counted by hand.
"""

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window
from shapely.geometry import box, shape

from pipelines.geo.grid import reproject as reproject_geometry
from pipelines.geo.tiling import TileSpec
from pipelines.sources import files, masks, synthetic
from pipelines.sources.base import SceneItem
from pipelines.sources.reader import ReadOptions, SceneError, SceneReader
from tests.conftest import RASTERS

PLANETSCOPE = RASTERS / "planetscope"
AUTO = ReadOptions(cloud_mask="auto")
REAL_UDM2 = PLANETSCOPE / "20151119_025740_0c74_3B_udm2_clip.tif"


@pytest.fixture(scope="module")
def real_scene(tmp_path_factory):
    """An analytic scene on the real UDM2's grid, named as Planet names it, with the real UDM2 beside it;
    its first 40 columns hold no data (a scene edge), so the fractions must leave them out."""
    folder = tmp_path_factory.mktemp("planetscope")
    with rasterio.open(REAL_UDM2) as udm2:
        profile = dict(driver="GTiff", width=udm2.width, height=udm2.height, count=4, dtype="uint16", crs=udm2.crs,
                       transform=udm2.transform, nodata=0, tiled=True, blockxsize=256, blockysize=256)
    pixels = np.random.default_rng(0).integers(1, 4000, (4, profile["height"], profile["width"]), dtype=np.uint16)
    pixels[:, :, :40] = 0
    scene = folder / "20151119_025740_0c74_3B_AnalyticMS_clip.tif"
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(pixels)
        dst.descriptions = ("blue", "green", "red", "nir")
    (folder / REAL_UDM2.name).symlink_to(REAL_UDM2)
    return scene


def oracle(udm2_path, scene_path, window):
    """Fractions over the window's pixels with data in the scene and not blackfill in the mask."""
    with rasterio.open(udm2_path) as udm2, rasterio.open(scene_path) as scene:
        flags = udm2.read(window=window, boundless=True, fill_value=0)
        valid = scene.read(1, window=window, boundless=True, fill_value=0) > 0
    counted = valid & (flags[7] & 1 == 0)
    share = lambda band: float(band[counted].mean())  # noqa: E731
    return dict(clear=share(flags[0] == 1), cloud=share(flags[5] == 1), shadow=share(flags[2] == 1),
                haze=share((flags[3] == 1) | (flags[4] == 1)))


@pytest.mark.parametrize("threads", [1, 3])
def test_real_udm2_is_found_beside_its_scene_and_read_per_tile(real_scene, threads):
    source = SceneItem(str(real_scene), "20151119_025740_0c74_3B_AnalyticMS_clip")
    spec = TileSpec(min_valid_fraction=0.0)
    with AUTO.open(source) as reader:
        assert reader.mask is not None and reader.mask.uri.endswith(REAL_UDM2.name)
        reads = list(reader.read_tiles(spec.tiles(reader.grid), threads=threads))
    assert len(reads) == 7 * 6
    hazy = 0
    for read in reads:
        col, row = (
            round(v) for v in ~rasterio.open(real_scene).transform * (read.tile.transform[2], read.tile.transform[5])
        )
        expected = oracle(REAL_UDM2, real_scene, Window(col, row, 256, 256))
        assert read.mask is not None and read.mask_error is None
        for name, value in expected.items():
            assert getattr(read.mask, name) == pytest.approx(value, abs=1e-9), (read.tile.tile_id, name)
        hazy += read.mask.haze > 0
    assert hazy >= 1 and min(r.mask.clear for r in reads) < 0.9  # the real mask has haze and blackfill


@pytest.mark.parametrize("threads", [1, 2])
def test_a_warped_grid_reads_the_mask_by_nearest_neighbour_like_gdal_reproject(real_scene, threads):
    source = SceneItem(str(real_scene), "scene")
    spec = TileSpec(grid="WebMercatorQuad", zoom=16, min_valid_fraction=0.0)
    with AUTO.open(source) as reader:
        reads = [r for r in reader.read_tiles(spec.tiles(reader.grid), threads=threads) if r.mask is not None]
    with rasterio.open(REAL_UDM2) as udm2, rasterio.open(real_scene) as scene:
        flags, valid_source = udm2.read(), (scene.read(1) > 0).astype(np.uint8)
        crs, transform = udm2.crs, udm2.transform
    checked = 0
    for read in reads[::5]:
        tile = read.tile
        clear = np.zeros((256, 256), dtype=np.uint8)
        reproject(flags[0], clear, src_transform=transform, src_crs=crs, dst_transform=tile.affine,
                  dst_crs=tile.crs, resampling=Resampling.nearest)
        inside = np.zeros((256, 256), dtype=np.uint8)
        reproject(np.ones_like(flags[0]), inside, src_transform=transform, src_crs=crs, dst_transform=tile.affine,
                  dst_crs=tile.crs, resampling=Resampling.nearest, dst_nodata=0)
        blackfill = np.zeros((256, 256), dtype=np.uint8)
        reproject(flags[7] & 1, blackfill, src_transform=transform, src_crs=crs, dst_transform=tile.affine,
                  dst_crs=tile.crs, resampling=Resampling.nearest)
        data = np.zeros((256, 256), dtype=np.uint8)
        reproject(valid_source, data, src_transform=transform, src_crs=crs, dst_transform=tile.affine,
                  dst_crs=tile.crs, resampling=Resampling.nearest)
        counted = (inside == 1) & (data == 1) & (blackfill == 0)
        # The image's valid pixels come from a bilinear warp, the oracle's from nearest: edges differ by a
        # pixel row at most, so the shares agree to a few tenths of a percent.
        assert read.mask.clear == pytest.approx(clear[counted].mean(), abs=0.01), tile.tile_id
        checked += 1
    assert checked >= 3


def test_a_udm2_is_refused_as_a_scene_and_passed_over_by_globs(real_scene):
    with pytest.raises(SceneError, match="usable data mask"):
        SceneReader(SceneItem(str(REAL_UDM2), "udm2"))
    found = files.Files([str(real_scene.parent / "*.tif")]).discover()
    assert [s.uri for s in found] == [str(real_scene)]


def test_a_udm2_of_another_grid_keeps_the_tiles_without_fractions(tmp_path):
    spec = synthetic.SceneSpec(seed=5, width=512, height=512)
    written = synthetic.write_scene(spec, tmp_path)
    (tmp_path / f"{spec.scene_id}_udm2.tif").unlink()
    (tmp_path / f"{spec.scene_id}_udm2.tif").symlink_to(REAL_UDM2)  # UTM 46N, 1578 x 1352: not this scene's
    tiles = TileSpec()
    with AUTO.open(SceneItem(written["scene"], spec.scene_id)) as reader:
        reads = list(reader.read_tiles(tiles.tiles(reader.grid)))
    assert len(reads) == 4 and all(r.image is not None and r.mask is None for r in reads)
    assert all("is not its scene's" in r.mask_error and "1578x1352" in r.mask_error for r in reads)


def test_cloud_mask_required_requires_one_and_none_ignores_it(tmp_path, real_scene):
    spec = synthetic.SceneSpec(seed=5, width=256, height=256)
    written = synthetic.write_scene(spec, tmp_path)
    (tmp_path / f"{spec.scene_id}_udm2.tif").unlink()
    with pytest.raises(SceneError, match=f"--cloud_mask required: no UDM2 beside the scene .*{spec.scene_id}_udm2.tif"):
        ReadOptions(cloud_mask="required").open(SceneItem(written["scene"], spec.scene_id))
    with ReadOptions(cloud_mask="auto").open(SceneItem(written["scene"], spec.scene_id)) as reader:
        assert reader.mask is None and reader.mask_error is None
    with ReadOptions(cloud_mask="none").open(SceneItem(str(real_scene), "s")) as reader:
        assert reader.mask is None
    with pytest.raises(ValueError, match="--cloud_mask 'udm2': choose from auto, required, none"):
        ReadOptions(cloud_mask="udm2")


def test_planet_names_lead_to_the_udm2():
    assert masks.candidates("gs://b/x/20230101_131500_12_2474_3B_AnalyticMS_SR_8b_clip.tif")[:2] == [
        "gs://b/x/20230101_131500_12_2474_3B_udm2_clip.tif", "gs://b/x/20230101_131500_12_2474_3B_udm2.tif"]
    assert masks.candidates("/d/scene.tif") == ["/d/scene_udm2.tif", "/d/scene_udm2_clip.tif"]
    assert masks.is_mask_name("a/20151119_025740_0c74_3B_udm2_clip.tif") and not masks.is_mask_name("a/udm2_notes.tif")


def test_synthetic_udm2_flags_the_planted_clouds_shadows_and_haze(tmp_path):
    spec = synthetic.SceneSpec(seed=3, width=1024, height=1024, cloud_probability=1.0, haze_probability=1.0)
    written = synthetic.write_scene(spec, tmp_path)
    truth = __import__("json").loads((tmp_path / f"{spec.scene_id}.truth.geojson").read_text())["features"]
    planted = {tag: shapely.union_all([reproject_geometry(shape(f["geometry"]), "EPSG:4326", synthetic.CRS)
                                       for f in truth if f["properties"]["tag"] == tag]) for tag in ("cloudy", "haze")}
    tiles = TileSpec(min_valid_fraction=0.0)
    with AUTO.open(SceneItem(written["scene"], spec.scene_id)) as reader:
        reads = list(reader.read_tiles(tiles.tiles(reader.grid)))
        pixels = rasterio.open(written["scene"]).read(3)
    checked = {"cloud": 0, "haze": 0}
    for read in reads:
        left, top = read.tile.transform[2], read.tile.transform[5]
        outline = box(left, top - 256 * 3, left + 256 * 3, top)
        cloud = planted["cloudy"].intersection(outline).area / outline.area
        haze_only = planted["haze"].difference(planted["cloudy"]).intersection(outline).area / outline.area
        # Rasterised polygons against exact areas: a pixel's worth along each edge.
        assert read.mask.cloud == pytest.approx(cloud, abs=0.02), read.tile.tile_id
        # Haze under a cloud's shadow is shadow: one class per pixel.
        assert haze_only - read.mask.shadow - 0.02 <= read.mask.haze <= haze_only + 0.02
        assert read.mask.clear + read.mask.cloud + read.mask.shadow + read.mask.haze == pytest.approx(1.0)
        checked["cloud"] += cloud > 0.05
        checked["haze"] += haze_only > 0.05
    assert checked["cloud"] and checked["haze"]
    with rasterio.open(written["udm2"]) as udm2:
        shadow, clear = udm2.read(3).astype(bool), udm2.read(1).astype(bool)
    assert shadow.any()
    # Shadowed ground is darker than clear ground: the mask flags what the pixels show.
    assert pixels[shadow].mean() < 0.8 * pixels[clear].mean()


def test_tiles_read_without_fractions_leave_the_mask_unread_and_the_pixels_the_same(real_scene):
    """Chipping reads no mask it does not use: the same tiles read without fractions have the same pixels
    and valid fractions, and no mask fractions."""
    source = SceneItem(str(real_scene), "20151119_025740_0c74_3B_AnalyticMS_clip")
    spec = TileSpec(min_valid_fraction=0.0)
    with AUTO.open(source) as reader:
        tiles = spec.tiles(reader.grid)
        with_mask = list(reader.read_tiles(tiles))
        without = list(reader.read_tiles(tiles, fractions=False))
    assert len(with_mask) == len(without) == 42
    for a, b in zip(with_mask, without):
        assert a.tile == b.tile and np.array_equal(a.image, b.image) and a.valid_fraction == b.valid_fraction
        assert a.mask is not None and b.mask is None and b.mask_error is None
    with rasterio.open(real_scene) as scene:
        first = scene.read(window=Window(0, 0, 256, 256)).transpose(1, 2, 0)
    assert without[0].valid_fraction == pytest.approx((256 - 40) / 256)
    assert np.array_equal(without[0].image[..., [2, 1, 0, 3]], first)  # records hold red, green, blue, nir


def test_udm2_fractions_and_clear_pixels_by_hand():
    """Ten pixels, one per case, against hand-counted shares: blackfill (bit 0 of ``udm1``, not bit 1) and
    pixels without data are not counted; heavy haze is haze; a pixel flagged clear and hazy is not clear;
    a pixel flagged nothing (snow) is counted but not clear."""
    # clear, shadow, haze_light, haze_heavy, cloud, udm1: the bands Udm2 reads, in its order
    pixels = [(1, 0, 0, 0, 0, 0),  # clear
              (1, 0, 0, 0, 0, 1),  # blackfill
              (0, 0, 0, 0, 1, 0),  # cloud
              (0, 1, 0, 0, 0, 0),  # shadow
              (0, 0, 1, 0, 0, 0),  # light haze
              (0, 0, 0, 1, 0, 0),  # heavy haze
              (0, 0, 0, 0, 0, 0),  # flagged nothing (snow)
              (1, 0, 0, 0, 0, 2),  # clear; udm1's other bits are not blackfill
              (1, 0, 0, 0, 0, 0),  # clear but no data in the scene
              (1, 0, 0, 1, 0, 0)]  # clear and heavy haze
    layers = np.array(pixels, dtype=np.uint8).T[:, None, :]
    valid = np.array([[True] * 8 + [False, True]])
    assert masks.Udm2.bands == (1, 3, 4, 5, 6, 8)
    assert masks.Udm2.count(layers, valid) == masks.MaskFractions(clear=3 / 8, cloud=1 / 8, shadow=1 / 8, haze=3 / 8)
    assert masks.Udm2.clear(layers, valid).tolist() == [[True] + [False] * 6 + [True, False, False]]
    assert masks.Udm2.count(layers, np.zeros_like(valid)) is None


def test_scl_fractions_and_clear_pixels_by_hand():
    """Every SCL class once, and a vegetation pixel without data: classes 0 and 1 are not counted; 4, 5 and 6
    are clear, 8 and 9 cloud, 3 shadow, 10 haze; 2, 7 and 11 are counted as none of them."""
    layers = np.array([[list(range(12)) + [4]]], dtype=np.uint8)
    valid = np.array([[True] * 12 + [False]])
    assert masks.Scl.count(layers, valid) == masks.MaskFractions(clear=3 / 10, cloud=2 / 10, shadow=1 / 10, haze=1 / 10)
    assert np.flatnonzero(masks.Scl.clear(layers, valid)).tolist() == [4, 5, 6]
    assert masks.Scl.count(np.array([[[0, 1]]], dtype=np.uint8), np.ones((1, 2), bool)) is None


def _grid_files(folder, mask_transform, mask_crs="EPSG:32721", bands=8):
    """A 64-px scene and a mask file of ``bands`` uint8 bands on ``mask_transform`` in ``mask_crs``."""
    transform = rasterio.Affine(3.0, 0.0, 600000.0, 0.0, -3.0, 8900000.0)
    common = dict(driver="GTiff", width=64, height=64)
    with rasterio.open(folder / "scene.tif", "w", count=4, dtype="uint16", crs="EPSG:32721", transform=transform,
                       **common) as dst:
        dst.write(np.ones((4, 64, 64), np.uint16))
    with rasterio.open(folder / "mask.tif", "w", count=bands, dtype="uint8", crs=mask_crs,
                       transform=mask_transform(transform), **common) as dst:
        dst.write(np.ones((bands, 64, 64), np.uint8))
    return folder / "scene.tif", str(folder / "mask.tif")


@pytest.mark.parametrize(("shift", "accepted"), [(0.0, True), (1e-7, True), (0.5, False), (1.0, False)])
def test_a_udm2_must_lie_on_its_scenes_grid_to_a_millionth_of_a_pixel(tmp_path, shift, accepted):
    scene, mask = _grid_files(tmp_path, lambda t: t * rasterio.Affine.translation(shift, 0))
    with rasterio.open(scene) as src:
        if accepted:
            masks.open_mask("udm2", mask, src).close()
        else:
            with pytest.raises(masks.MaskError, match="is not its scene's"):
                masks.open_mask("udm2", mask, src)


def test_an_scl_in_another_crs_or_of_several_bands_is_refused(tmp_path):
    scene, mask = _grid_files(tmp_path, lambda t: t, mask_crs="EPSG:32722", bands=1)
    refused = r"its CRS \(EPSG:32722\) is not its scene's"
    with rasterio.open(scene) as src, pytest.raises(masks.MaskError, match=refused):
        masks.open_mask("scl", mask, src)
    scene, mask = _grid_files(tmp_path, lambda t: t, bands=2)
    with rasterio.open(scene) as src, pytest.raises(masks.MaskError, match="not a scene classification"):
        masks.open_mask("scl", mask, src)
    scene, mask = _grid_files(tmp_path, lambda t: t, bands=1)
    with rasterio.open(scene) as src:
        masks.open_mask("scl", mask, src).close()


def test_mask_names_in_any_case_and_a_udm2_is_never_its_own_mask():
    assert masks.is_mask_name("gs://b/20151119_025740_0C74_3B_UDM2_CLIP.TIF")
    stem = "/d/20151119_025740_0c74_3B_udm2"
    assert masks.candidates(f"{stem}_clip.tif") == [f"{stem}.tif", f"{stem}_clip_udm2.tif",
                                                    f"{stem}_clip_udm2_clip.tif"]
