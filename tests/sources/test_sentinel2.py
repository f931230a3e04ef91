"""Sentinel-2 L2A through the sources seam: items as Earth Search, the Planetary Computer and Copernicus
Data Space name them; the 10 m bands read as one scene with BOA_ADD_OFFSET taken away; the 20 m SCL as
the cloud mask. Synthetic Sentinel-2-shaped files (separate band COGs, SCL at 20 m, an item) with the
drawn reflectance and sky as the oracle."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject

from pipelines import chip
from pipelines.geo.tiling import TileSpec
from pipelines.sources import sentinel2, stac, synthetic
from pipelines.sources.base import SCL
from pipelines.sources.reader import ReadOptions
from planet_core import imagery
from tests.conftest import RUNNER
from tests.pipelines.test_chip import read_chips

SPEC = synthetic.SceneSpec(seed=4, width=512, height=512, cloud_probability=1.0, haze_probability=1.0)
REQUIRED = ReadOptions(cloud_mask="required")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return synthetic.write_sentinel2(SPEC, tmp_path_factory.mktemp("s2"))


def oracle_fractions(classes, valid):
    counted = valid & ~np.isin(classes, (0, 1))
    n = counted.sum()

    def share(*values):
        return float(np.isin(classes[counted], values).sum() / n)

    return {"clear": share(4, 5, 6), "cloud": share(8, 9), "shadow": share(3), "haze": share(10)}


def test_an_earth_search_item_is_four_10m_bands_an_scl_and_the_offset(written):
    [item] = stac.StacItems(written["stac"]).discover()
    assert item.scene_id == written["item_id"] and item.product == imagery.SURFACE_REFLECTANCE
    assert [role for role, _ in item.band_files] == ["red", "green", "blue", "nir"]
    assert item.band_files[0][1].endswith("B04.tif") and item.mask.endswith("SCL.tif") and item.mask_kind == SCL
    assert item.value_offset == -1000 and item.acquired == "2026-06-01T13:30:00+00:00"


def test_the_bands_read_as_the_drawn_reflectance_and_the_scl_as_the_sky(written):
    [item] = stac.StacItems(written["stac"]).discover()
    spec = TileSpec(min_valid_fraction=0.0)
    with REQUIRED.open(item) as reader:
        assert reader.bands == imagery.RGBN and reader.gsd_m == pytest.approx(10.0, rel=1e-3)
        assert reader.mask.kind == SCL
        reads = list(reader.read_tiles(spec.tiles(reader.grid)))
    drawn = written["pixels"][[2, 1, 0, 3]].transpose(1, 2, 0)  # blue, green, red, nir -> record order
    classes = np.repeat(np.repeat(written["classes"][::2, ::2], 2, axis=0), 2, axis=1)  # the 20 m SCL on 10 m
    assert len(reads) == 4
    for read in reads:
        col, row = (
            round((read.tile.transform[2] - SPEC.origin[0]) / 10),
            round((SPEC.origin[1] - read.tile.transform[5]) / 10),
        )
        window = np.s_[row:row + 256, col:col + 256]
        assert np.array_equal(read.image, drawn[window]), read.tile.tile_id
        expected = oracle_fractions(classes[window], np.ones((256, 256), bool))
        assert {k: getattr(read.mask, k) for k in expected} == pytest.approx(expected, abs=1e-12)
    assert max(r.mask.cloud for r in reads) > 0.05 and max(r.mask.haze for r in reads) > 0.05


def test_a_warped_grid_reads_the_scl_like_gdal_reproject_nearest(written):
    [item] = stac.StacItems(written["stac"]).discover()
    spec = TileSpec(grid="WebMercatorQuad", zoom=14, min_valid_fraction=0.0)
    with REQUIRED.open(item) as reader:
        reads = [r for r in reader.read_tiles(spec.tiles(reader.grid)) if r.mask is not None and r.valid_fraction > 0.5]
    with rasterio.open(written["bands"]["scl"]) as src:
        scl, crs, transform = src.read(1), src.crs, src.transform
    assert reads
    for read in reads:
        classes = np.zeros((256, 256), np.uint8)
        reproject(scl, classes, src_transform=transform, src_crs=crs, dst_transform=read.tile.affine,
                  dst_crs=read.tile.crs, resampling=Resampling.nearest, dst_nodata=0)
        valid = read.image.max(axis=2) > 0
        expected = oracle_fractions(classes, valid)
        # The image's valid pixels come from a bilinear warp: edges differ by a pixel row at most.
        assert read.mask.clear == pytest.approx(expected["clear"], abs=0.02), read.tile.tile_id


@pytest.mark.parametrize("naming, properties, raster_bands, offset", [
    ({"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "scl": "SCL"},  # Planetary Computer
     {"s2:processing_baseline": "05.10"}, None, -1000),
    ({"blue": "B02_10m", "green": "B03_10m", "red": "B04_10m", "nir": "B08_10m", "scl": "SCL_20m"},  # CDSE
     {"s2:processing_baseline": "05.11"}, {"scale": 0.0001, "offset": -0.1}, -1000),
    ({"blue": "blue", "green": "green", "red": "red", "nir": "nir", "scl": "scl"},  # Earth Search, offset applied
     {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True}, None, 0),
    ({"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "scl": "SCL"},  # before baseline 04.00
     {"s2:processing_baseline": "02.14"}, None, 0),
])
def test_every_catalogues_naming_and_offset(written, tmp_path, naming, properties, raster_bands, offset):
    document = json.loads(open(written["stac"]).read())
    feature = document["features"][0]
    folder = written["stac"].rsplit("/", 1)[0]
    feature["assets"] = {naming[key]: {**asset, "href": f"{folder}/{asset['href']}",
                                       **({"raster:bands": [raster_bands]} if raster_bands else {})}
                         for key, asset in feature["assets"].items()}
    feature["properties"] = {"datetime": feature["properties"]["datetime"], "platform": "sentinel-2a", **properties}
    feature.pop("collection")
    path = tmp_path / "items.json"
    path.write_text(json.dumps(document))
    [item] = stac.StacItems(str(path)).discover()
    assert item.mask_kind == SCL and item.value_offset == offset and item.mask.endswith("SCL.tif")


def test_an_l2a_item_without_its_10m_bands_is_read_as_a_general_item(written, tmp_path):
    """Not the Sentinel-2 kind without B08: the general reading takes what it finds, without an SCL."""
    document = json.loads(open(written["stac"]).read())
    feature = document["features"][0]
    folder = written["stac"].rsplit("/", 1)[0]
    feature["assets"] = {k: {**a, "href": f"{folder}/{a['href']}"} for k, a in feature["assets"].items() if k != "nir"}
    path = tmp_path / "items.json"
    path.write_text(json.dumps(document))
    [item] = stac.StacItems(str(path)).discover()
    assert [r for r, _ in item.band_files] == ["red", "green", "blue"] and item.value_offset == 0
    assert not sentinel2.scene_item(__import__("pystac").Item.from_dict(feature), folder)


@pytest.mark.slow
def test_chipping_a_sentinel2_item_screens_chips_by_its_scl(written, tmp_path):
    out = tmp_path / "chips"
    manifest = chip.run([*RUNNER, "--stac", written["stac"], "--skip_cloudier_than", "0.5", "--cloud_mask", "required",
                         "--tile_size", "128", "--output", str(out)])
    classes = np.repeat(np.repeat(written["classes"][::2, ::2], 2, axis=0), 2, axis=1)
    shares = [np.isin(classes[r:r + 128, c:c + 128], (4, 5, 6)).mean() for r in range(0, 512, 128)
              for c in range(0, 512, 128)]
    cloudy = sum(1 - share > 0.5 for share in shares)
    assert 0 < cloudy < 16
    assert manifest["written"] == 16 - cloudy and manifest["skipped_reasons"] == {"cloudy": cloudy}
    found = read_chips(out)
    assert len(found) == 16 - cloudy
    for c in found:
        assert c.product == imagery.SURFACE_REFLECTANCE and c.gsd_m == pytest.approx(10.0, rel=1e-3)
        assert c.image.dtype == np.uint16 and c.image.max() < 6000  # reflectance x 10000, the offset taken away
