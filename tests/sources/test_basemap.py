"""Planet basemap quads as Planet publishes them (COG, EPSG:3857, z15 pixels, alpha band), read on the z15
grid with no resampling: every tile's pixels are the quad's own, the alpha band is the mask."""

import numpy as np
import pytest
import rasterio

from pipelines.geo.tiling import TileSpec
from pipelines.sources import files, synthetic
from pipelines.sources.basemap import mosaic_month
from pipelines.sources.files import scene_id_from_uri
from pipelines.sources.reader import ReadOptions

Z15 = TileSpec(grid="WebMercatorQuad", zoom=15, min_valid_fraction=0.0)


@pytest.fixture(scope="module")
def quad(tmp_path_factory):
    """One full-size (4096 px) quad of a June normalized-analytic mosaic, in the mosaic's first column."""
    [month] = synthetic.write_basemap(11, ["2026-06"], 1, 1, tmp_path_factory.mktemp("basemap"))
    return month["quads"][0]["scene"]


def test_a_quad_is_16_by_16_z15_tiles_read_without_resampling(quad):
    with rasterio.open(quad) as src:
        assert src.crs.to_epsg() == 3857 and src.res[0] == pytest.approx(4.777314, abs=1e-6)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.count == 5
        bands, transform = src.read(), src.transform
    [source] = files.Files([quad]).discover()
    assert source.scene_id == "planet_medres_normalized_analytic_2026-06_mosaic/" + source.uri.rsplit("/", 1)[1][:-4]
    with ReadOptions().open(source) as reader:
        assert reader.product == "surface_reflectance" and reader.layout.alpha == 5
        tiles = Z15.tiles(reader.grid)
        reads = list(reader.read_tiles(tiles))
    assert len(reads) == 256 and len({t.tile_id for t in tiles}) == 256
    for read in reads:
        col, row = (round(v) for v in ~transform * (read.tile.transform[2], read.tile.transform[5]))
        assert col % 256 == 0 and row % 256 == 0 and 0 <= col < 4096 and 0 <= row < 4096
        window = np.s_[:, row:row + 256, col:col + 256]
        expected = bands[window][[2, 1, 0, 3]].transpose(1, 2, 0)  # blue, green, red, nir -> red, green, blue, nir
        alpha = bands[window][4] > 0
        assert np.array_equal(read.image[alpha], expected[alpha]), read.tile.tile_id
        assert (read.image[~alpha] == 0).all()
        # The first 384 columns of a mosaic's first column of quads are not covered (alpha 0).
        assert read.valid_fraction == {0: 0.0, 256: 0.5}.get(col, 1.0), read.tile.tile_id


def test_visual_quads_are_rgba_bytes_and_their_mosaic_names_the_product(tmp_path):
    [month] = synthetic.write_basemap(11, ["2026-07"], 1, 1, tmp_path, product="visual", quad_size=1024)
    path = month["quads"][0]["scene"]
    assert mosaic_month(path) == "2026-07" and "planet_medres_visual_2026-07_mosaic" in scene_id_from_uri(path)
    with ReadOptions().open(files.item(path)) as reader:
        assert reader.product == "visual" and reader.dtype == "uint8" and reader.bands == ("red", "green", "blue")
        reads = list(reader.read_tiles(Z15.tiles(reader.grid)))
    with rasterio.open(path) as src:
        rgba = src.read()
    assert len(reads) == 16
    for read in reads:
        col = round((read.tile.transform[2] - src.transform.c) / src.transform.a)
        row = round((read.tile.transform[5] - src.transform.f) / src.transform.e)
        alpha = rgba[3, row:row + 256, col:col + 256] > 0
        assert np.array_equal(read.image[alpha], rgba[:3, row:row + 256, col:col + 256].transpose(1, 2, 0)[alpha])


def test_a_quad_with_a_broken_block_loses_that_tile_only(tmp_path):
    [month] = synthetic.write_basemap(11, ["2026-06"], 2, 1, tmp_path, quad_size=1024)
    path = month["quads"][1]["scene"]  # fully covered
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_2_1", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_2_1", "TIFF", bidx=1))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    with ReadOptions().open(files.item(path)) as reader:
        reads = list(reader.read_tiles(Z15.tiles(reader.grid)))
        broken = [(r.tile.tile_id, reader.window_of(r.tile)) for r in reads if r.error is not None]
    assert len(reads) == 16 and [window for _, window in broken] == [[512, 256, 256, 256]]
    assert all(r.image is not None for r in reads if r.error is None)


def test_quads_of_the_same_place_keep_the_land_and_change_after_the_first_month(tmp_path):
    june, july = synthetic.write_basemap(11, ["2026-06", "2026-07"], 1, 1, tmp_path, quad_size=1024)
    assert [q["planted"] for q in june["quads"]] == [[]] and july["quads"][0]["planted"]
    with rasterio.open(june["quads"][0]["scene"]) as a, rasterio.open(july["quads"][0]["scene"]) as b:
        before, after = a.read(3), b.read(3)
        assert a.transform == b.transform
    # Texture noise differs month to month (within about 35 %); the planted clearings, burn scars and road
    # change the red reflectance by far more, and nothing else does.
    changed = np.abs(after.astype(np.float64) - before) > 0.6 * before
    assert 0.005 < changed.mean() < 0.3


@pytest.mark.parametrize(("folder", "month"), [
    ("planet_medres_normalized_analytic_2026-06_mosaic", "2026-06"),
    ("planet_medres_visual_2026-07_mosaic", "2026-07"),
    ("planet_medres_normalized_analytic_2015-12_2016-05_mosaic", "2015-12"),  # NICFI's bi-annual archive
    ("global_quarterly_2026q2_mosaic", None),
    ("ps_2026-06_custom_mosaic", None),  # a date, but not the mosaic's: a name Planet does not give
    ("planet_medres_normalized_analytic_2026-06", None),  # not a mosaic's folder
])
def test_a_quads_month_is_its_mosaics_month_or_first_month(folder, month):
    assert mosaic_month(f"gs://b/{folder}/704-1080.tif") == month
