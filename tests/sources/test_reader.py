"""SceneReader on the real shared rasters: band roles, windows, valid fractions, refusals.

Expected pixels come from plain rasterio reads of the same windows, not from the reader under test.
"""

import threading

import numpy as np
import pytest
import rasterio
import rasterio.transform
from rasterio.windows import Window

from pipelines.sources import files
from pipelines.sources import reader as reader_module
from pipelines.sources.base import SceneItem, SourceError
from pipelines.sources.reader import ReadOptions, SceneError, SceneReader, parse_band_order
from tests.conftest import RASTERS

PLANETSCOPE = RASTERS / "planetscope"


def native_tiles(reader, size=256):
    grid = reader.grid.native(size)
    return [grid.tile(r, c) for r, c in grid.tiles()]


def test_blue_green_red_alpha_file_reads_as_red_green_blue_with_the_alpha_mask():
    path = RASTERS / "RGBA.uint16.tif"  # colour interpretation blue, green, red, alpha
    with SceneReader(files.item(str(path))) as reader:
        assert reader.bands == ("red", "green", "blue") and reader.layout.alpha == 4
        results = list(reader.read_tiles(native_tiles(reader)))
    with rasterio.open(path) as src:
        for tile, image, valid, error, *_ in results:
            assert error is None
            col, row = (int(v) for v in ~src.transform * (tile.transform[2], tile.transform[5]))
            expected = src.read([3, 2, 1], window=Window(col, row, 256, 256), boundless=True, fill_value=0)
            alpha = src.read(4, window=Window(col, row, 256, 256), boundless=True, fill_value=0)
            expected[:, alpha == 0] = 0  # pixels without data are 0 in every tile, whatever the scene holds
            assert np.array_equal(image, expected.transpose(1, 2, 0)), tile.tile_id
            assert valid == pytest.approx((alpha > 0).mean())


def test_nodata_collar_gives_the_valid_fraction_rasterio_gives():
    path = RASTERS / "RGB.byte.tif"  # nodata 0 around a Landsat 7 excerpt
    with SceneReader(files.item(str(path))) as reader:
        results = list(reader.read_tiles(native_tiles(reader)))
    with rasterio.open(path) as src:
        mask = src.dataset_mask()
    fractions = [read.valid_fraction for read in results]
    padded = np.zeros((768, 1024), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask > 0
    expected = [padded[r:r + 256, c:c + 256].mean() for r in range(0, 768, 256) for c in range(0, 1024, 256)]
    assert fractions == pytest.approx(expected)
    assert min(fractions) < 0.5 < max(fractions) <= 1  # the collar leaves some tiles empty, some full


def test_band_roles_only_an_explicit_order_can_give():
    path = PLANETSCOPE / "color_balance_source.tif"  # gray, undefined, undefined
    with pytest.raises(SceneError, match="--band_order"):
        SceneReader(files.item(str(path)))
    with SceneReader(files.item(str(path)), parse_band_order("blue,green,red")) as reader:
        assert (reader.layout.red, reader.layout.green, reader.layout.blue) == (3, 2, 1)
        [(tile, image, *_)] = list(reader.read_tiles(native_tiles(reader, 128)[:1]))
    with rasterio.open(path) as src:
        assert np.array_equal(image, src.read([3, 2, 1], window=Window(0, 0, 128, 128)).transpose(1, 2, 0))
    with pytest.raises(ValueError, match="unknown band role"):
        parse_band_order("blue,green,red,infrared")
    with pytest.raises(SceneError, match="names 4 bands but the scene has 3"):
        SceneReader(files.item(str(path)), parse_band_order("blue,green,red,nir"))


def test_unusable_scenes_are_refused_with_the_reason():
    with pytest.raises(SceneError, match="unusable georeferencing"):
        SceneReader(files.item(str(RASTERS / "rotated.tif")))
    with pytest.raises(SceneError, match="cannot open"):
        SceneReader(files.item(str(RASTERS / "missing.tif")))
    with pytest.raises(SourceError, match="no scene matches"):
        files.Files([str(RASTERS / "nothing-*.tif")]).discover()


def test_corrupt_blocks_fail_alone():
    with SceneReader(files.item(str(RASTERS / "corrupt.tif"))) as reader:
        results = list(reader.read_tiles(native_tiles(reader)))
    failed = [read.tile.tile_id for read in results if read.error is not None]
    assert len(results) == 16 and len(failed) == 4  # the shared README: 4 of the 16 windows are broken


@pytest.mark.parametrize(("name", "product"), [
    ("20160601_133000_0e0e_3B_AnalyticMS_SR.tif", "surface_reflectance"),
    ("20160601_133000_0e0e_3B_AnalyticMS_SR_clip.tif", "surface_reflectance"),
    ("20160601_133000_0e0e_3B_AnalyticMS.tif", "analytic"),
    ("1056417_2017-03-08_RE3_3A_Visual_clip.tif", "visual"),
    ("ortho_analytic_4b_sr", "surface_reflectance"),
    ("planet_medres_normalized_analytic_2026-06_mosaic/1234-5678.tif", "surface_reflectance"),
    ("synth_20260601_r0c0.tif", "unknown"),
])
def test_products_from_planet_names(name, product):
    assert files.product_from_name(name) == product


def test_a_real_visual_product_says_so_and_measures_its_pixel():
    path = PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif"  # RapidEye visual, 5 m, UTM 10N
    with SceneReader(files.item(str(path))) as reader:
        assert reader.product == "visual" and reader.gsd_m == pytest.approx(5.0, rel=2e-3)


def test_nodata_pixels_read_the_same_whatever_the_nodata_value(tmp_path):
    """The same scene with nodata 0 and with nodata 65535 gives identical tiles (edges included)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(1, 4000, (3, 300, 300), dtype=np.uint16)
    pixels[:, :, :40] = 0
    tiles = {}
    for nodata in (0, 65535):
        data = pixels.copy()
        data[:, :, :40] = nodata
        path = tmp_path / f"nodata{nodata}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=3, dtype="uint16", nodata=nodata,
                           crs="EPSG:32721", transform=rasterio.transform.from_origin(600000, 8900000, 3, 3),
                           photometric="RGB") as dst:
            dst.write(data)
        with SceneReader(SceneItem(str(path), "s")) as reader:
            tiles[nodata] = [
                (t.tile_id, image, valid) for t, image, valid, *_ in reader.read_tiles(native_tiles(reader))
            ]
    for (id0, image0, valid0), (id1, image1, valid1) in zip(tiles[0], tiles[65535]):
        assert id0 == id1 and valid0 == valid1 and np.array_equal(image0, image1)
    assert tiles[0][0][1][:, :40].max() == 0 and tiles[0][0][2] == pytest.approx((256 - 40) / 256)


def test_superdove_band_descriptions_give_the_roles(tmp_path):
    path = tmp_path / "20250101_131313_00_24a5_3B_AnalyticMS_SR_8b.tif"
    names = ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=8, dtype="uint16", crs="EPSG:32721",
                       transform=rasterio.transform.from_origin(600000, 8900000, 3, 3)) as dst:
        dst.write(np.stack([np.full((64, 64), 100 * (i + 1), np.uint16) for i in range(8)]))
        dst.descriptions = names
    with SceneReader(files.item(str(path))) as reader:
        layout = reader.layout
        assert (layout.red, layout.green, layout.blue, layout.nir) == (6, 4, 2, 8)
        assert reader.product == "surface_reflectance"
        [(_, image, *_)] = list(reader.read_tiles(native_tiles(reader, 64)))
    assert image[0, 0].tolist() == [600, 400, 200, 800]


def test_a_basemap_quad_anywhere_keeps_its_nir_band(tmp_path):
    """Planet's quads are blue, green, red, NIR (undefined) and alpha: recognised by what the file holds,
    in a folder of any name (the issue's quad lost its NIR band outside a mosaic-named folder)."""
    from rasterio.enums import ColorInterp

    path = tmp_path / "downloads" / "1234-5678_quad.tif"
    path.parent.mkdir()
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=5, dtype="uint16", crs="EPSG:3857",
                       transform=rasterio.transform.from_origin(-6240000, -1100000, 4.77, 4.77)) as dst:
        dst.write(np.stack([np.full((64, 64), v, np.uint16) for v in (350, 600, 330, 3000, 65535)]))
        dst.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined,
                           ColorInterp.alpha]
    with SceneReader(files.item(str(path))) as reader:
        layout = reader.layout
        assert (layout.red, layout.green, layout.blue, layout.nir, layout.alpha) == (3, 2, 1, 4, 5)
        [(_, image, valid, *_)] = list(reader.read_tiles(native_tiles(reader, 64)))
    assert image[0, 0].tolist() == [330, 600, 350, 3000] and valid == 1.0


def test_a_real_udm2_mask_is_never_read_as_an_image():
    path = PLANETSCOPE / "20151119_025740_0c74_3B_udm2_clip.tif"  # its first bands are flagged red, green, blue
    with pytest.raises(SceneError, match="usable data mask"):
        SceneReader(files.item(str(path)))


def test_web_mercator_tiles_are_what_gdal_reproject_makes_of_the_same_window():
    """The oracle: ``rasterio.warp.reproject`` of the whole real scene onto each tile's own grid (bilinear,
    nodata 0), independent of the reader's one-VRT-per-batch warp."""
    from rasterio.warp import Resampling, reproject

    from pipelines.geo.tiling import TileSpec

    path = RASTERS / "RGB.byte.tif"  # UTM 18N, 300 m, nodata collar
    spec = TileSpec(grid="WebMercatorQuad", zoom=9, min_valid_fraction=0.0)
    with ReadOptions().open(files.item(str(path))) as reader:
        reads = list(reader.read_tiles(spec.tiles(reader.grid)))
    with rasterio.open(path) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    compared = 0
    for read in reads:
        expected = np.zeros((3, 256, 256), dtype=np.uint8)
        reproject(data, expected, src_transform=transform, src_crs=crs, src_nodata=0, dst_transform=read.tile.affine,
                  dst_crs=read.tile.crs, dst_nodata=0, resampling=Resampling.bilinear)
        both = (read.image.max(axis=2) > 0) & (expected.max(axis=0) > 0)
        if both.sum() < 1000:
            continue
        difference = np.abs(read.image[both].astype(int) - expected.transpose(1, 2, 0)[both].astype(int))
        # The same GDAL warper on the same pixels: equal but for rounding where the two warps chunk the
        # work differently.
        assert np.percentile(difference, 99) <= 1 and difference.max() <= 3, read.tile.tile_id
        # Coverage agrees too, pixel by pixel: the reader's valid mask and reproject's nodata differ only at
        # single pixels on the collar's edge, never along a whole row or column of the tile (a warp grid a
        # pixel short leaves the tiles on its far side a column without data).
        mine, theirs = read.image.max(axis=2) > 0, expected.max(axis=0) > 0
        assert (mine != theirs).sum() <= 16, read.tile.tile_id
        assert (mine != theirs).sum(axis=0).max() <= 4 and (mine != theirs).sum(axis=1).max() <= 4, read.tile.tile_id
        compared += 1
    assert compared >= 2


def test_tiles_inside_a_scene_are_read_to_their_last_row_and_column():
    """Tiles wholly inside the scene, read together through one warped VRT over their union, hold data
    in every pixel, as ``rasterio.warp.reproject`` of the same tile does: a VRT a pixel short of the union
    would leave the far column (or row) of the batch without data, 0.4 % of a tile."""
    from rasterio.warp import Resampling, reproject

    from pipelines.geo.tiling import TileSpec

    path = RASTERS / "RGB.byte.tif"
    spec = TileSpec(grid="WebMercatorQuad", zoom=10, min_valid_fraction=0.0)
    with rasterio.open(path) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    with ReadOptions().open(files.item(str(path))) as reader:
        inside = []
        for tile in spec.tiles(reader.grid):
            expected = np.zeros((3, 256, 256), dtype=np.uint8)
            reproject(data, expected, src_transform=transform, src_crs=crs, src_nodata=0, dst_transform=tile.affine,
                      dst_crs=tile.crs, dst_nodata=0, resampling=Resampling.bilinear)
            if (expected.max(axis=0) > 0).all():
                inside.append(tile)
        assert len(inside) >= 4
        reads = list(reader.read_tiles(inside))
    assert len(reads) == len(inside)
    for read in reads:
        assert read.valid_fraction == 1.0 and (read.image.max(axis=2) > 0).all(), read.tile.tile_id


@pytest.mark.parametrize(("dtype", "bands", "nodata"), [
    ("uint16", 4, 0), ("uint8", 4, 0), ("uint16", 3, 0), ("uint8", 3, 0), ("int16", 4, -1), ("uint16", 4, 65535),
    ("float32", 4, 0), ("float32", 3, float("nan")),
])
def test_a_pixel_holds_data_when_any_band_differs_from_nodata(dtype, bands, nodata):
    """Whichever way it is counted (one wide integer per pixel, or band by band), a pixel is data when any
    one band differs from nodata: numpy's any over the bands is the oracle, with pixels where a single band
    is not nodata and, for floats, negative zero (which equals 0)."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(1, 100, (64, 64, bands)).astype(dtype)
    pixels[rng.random((64, 64)) < 0.4] = nodata
    lone = rng.random((64, 64)) < 0.1
    pixels[lone, rng.integers(0, bands)] = 7
    if dtype == "float32":
        pixels[:3, :3] = -0.0
    is_nodata = np.isnan(pixels) if np.isnan(nodata) else pixels == nodata
    expected = np.any(~is_nodata, axis=2)
    assert np.array_equal(reader_module._holds_data(pixels, nodata), expected)
    assert np.array_equal(reader_module._holds_data(pixels[:, 5:40], nodata), expected[:, 5:40])  # not contiguous


def test_reads_ahead_keep_their_order_their_errors_and_their_clean_up():
    """Read-ahead yields what the reads yield in order, raises where they raise, and when the caller stops
    early it closes the reads (their datasets) on the caller's side, after the reads in flight have finished
    (how many ran ahead by then depends on timing: a prefix of them, never more than the depth asked)."""
    log = []

    def reads(n, fail_at=None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise OSError(f"block {i}")
                log.append(("read", i, threading.current_thread().name))
                yield i
        finally:
            log.append(("closed", threading.current_thread().name))

    assert list(reader_module._read_ahead([reads(5)])) == [0, 1, 2, 3, 4]
    assert all(name.startswith("read-ahead") for *_, name in log[:-1])
    log.clear()
    got = []
    with pytest.raises(OSError, match="block 2"):
        for i in reader_module._read_ahead([reads(5, fail_at=2)]):
            got.append(i)
    assert got == [0, 1]
    log.clear()
    depth = reader_module.READ_AHEAD
    ahead = reader_module._read_ahead([reads(depth + 10)])  # never read to its end: at most depth + 1 are asked
    assert next(ahead) == 0
    ahead.close()
    made = [e[1] for e in log[:-1]]
    assert log[-1] == ("closed", threading.current_thread().name) and made == list(range(len(made))) and made
    assert len(made) <= depth + 1


def test_lanes_are_taken_in_turn_each_on_its_own_thread_and_all_closed_at_the_end():
    """Three lanes of uneven length (tiles 0, 3, 6 / 1, 4, 7 / 2, 5) come back as one run in tile order;
    each lane runs on one thread of its own, and every lane is closed, once, by the time the run ends (a
    lane that runs out closes itself on its thread, possibly before the others' last reads)."""
    log = []

    def lane(number, tiles):
        try:
            for tile in tiles:
                log.append((tile, threading.current_thread().name))
                yield tile
        finally:
            log.append(("closed", number))

    tiles = list(range(8))
    assert list(reader_module._read_ahead([lane(i, tiles[i::3]) for i in range(3)], depth=4)) == tiles
    threads = {tile: name for tile, name in log if isinstance(tile, int)}
    assert len({threads[i] for i in (0, 3, 6)}) == len({threads[i] for i in (1, 4, 7)}) == 1
    assert len({threads[0], threads[1], threads[2]}) == 3
    assert sorted(number for entry, number in log if entry == "closed") == [0, 1, 2]


def test_threads_read_the_same_tiles_as_one():
    """A real PlanetScope crop read by 1 and by 3 threads: the same tiles, pixels and fractions, in order."""
    path = PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif"
    with SceneReader(files.item(str(path))) as reader:
        tiles = native_tiles(reader, 128)
        one = list(reader.read_tiles(tiles))
        three = list(reader.read_tiles(tiles, threads=3))
    assert len(tiles) > 6 and [r.tile for r in three] == tiles
    for a, b in zip(one, three):
        assert np.array_equal(a.image, b.image) and a.valid_fraction == b.valid_fraction and b.error is None


def test_a_scene_gone_before_its_copies_open_fails_their_tiles_one_by_one(tmp_path):
    """The copies other threads read through are opened when their reads start: a scene deleted after it was
    opened fails those threads' tiles as reads (counted errors), while the open scene still reads its own."""
    path = tmp_path / "scene.tif"
    path.write_bytes((PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif").read_bytes())
    with SceneReader(files.item(str(path))) as reader:
        tiles = native_tiles(reader, 128)
        path.unlink()
        reads = list(reader.read_tiles(tiles, threads=2))
    assert [r.tile for r in reads] == tiles
    assert all(r.error is None for r in reads[::2])
    assert all(isinstance(r.error, SceneError) and "cannot open" in str(r.error) for r in reads[1::2])


def _described(folder, name, descriptions, interps, tags=None):
    """A 16-px file of ``len(descriptions)`` bands (each band's value its index) with these descriptions and
    colour interpretations."""
    from rasterio.enums import ColorInterp

    path = folder / name
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=len(descriptions), dtype="uint16",
                       crs="EPSG:32721", transform=rasterio.transform.from_origin(600000, 8900000, 3, 3)) as dst:
        dst.write(np.stack([np.full((16, 16), i + 1, np.uint16) for i in range(len(descriptions))]))
        dst.descriptions = descriptions
        dst.colorinterp = [getattr(ColorInterp, c) for c in interps]
        dst.update_tags(**(tags or {}))
    return files.item(str(path))


def test_a_band_described_as_something_else_is_never_taken_for_nir_and_the_first_of_a_role_wins(tmp_path):
    """A red-edge band of a 4-band file is not NIR because it is the one band left; of two bands described
    as one role (nir and near-infrared), the first is read."""
    rededge = _described(tmp_path, "rededge.tif", (None, None, None, "rededge"),
                         ("red", "green", "blue", "undefined"))
    with SceneReader(rededge) as reader:
        assert reader.bands == ("red", "green", "blue") and reader.layout.nir is None
    twice = _described(tmp_path, "twice.tif", ("blue", "green", "red", "nir", "near-infrared"),
                       ("undefined",) * 5)
    with SceneReader(twice) as reader:
        assert (reader.layout.red, reader.layout.nir) == (3, 4)


def test_a_band_order_names_every_band_in_any_case(tmp_path):
    scene = _described(tmp_path, "plain.tif", (None,) * 4, ("gray", "undefined", "undefined", "undefined"))
    assert parse_band_order(" Blue, GREEN,red ,NIR") == ("blue", "green", "red", "nir")
    with pytest.raises(SceneError, match="--band_order names 3 bands but the scene has 4"):
        SceneReader(scene, parse_band_order("blue,green,red"))
    with SceneReader(scene, parse_band_order("skip,blue,green,red")) as reader:
        assert (reader.layout.red, reader.layout.green, reader.layout.blue, reader.layout.nir) == (4, 3, 2, None)


def test_a_scenes_product_and_time_from_its_tags(tmp_path):
    interps = ("red", "green", "blue")
    with SceneReader(_described(tmp_path, "a.tif", (None,) * 3, interps,
                                {"product": "analytic", "TIFFTAG_DATETIME": "2026:06:01 13:30:00"})) as reader:
        assert (reader.product, reader.acquired) == ("analytic", "2026-06-01T13:30:00+00:00")
    with SceneReader(_described(tmp_path, "b.tif", (None,) * 3, interps,
                                {"product": "photograph", "TIFFTAG_DATETIME": "June 1st"})) as reader:
        assert (reader.product, reader.acquired) == ("unknown", None)
    with SceneReader(_described(tmp_path, "c.tif", (None,) * 3, interps,
                                {"acquired": "2026-06-02T10:00:00+00:00",
                                 "TIFFTAG_DATETIME": "2026:06:01 13:30:00"})) as reader:
        assert reader.acquired == "2026-06-02T10:00:00+00:00"
