"""STAC ItemCollections: Planet-style items (one file, a UDM2 asset) and band-per-file items (the real
Landsat 8 bands in the shared data), read as one scene with rasterio's own reads of the band files as oracle."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box, mapping

from pipelines.geo import stac
from pipelines.geo.scenes import SceneError, SceneReader, SceneSource, resolve_sources
from pipelines.geo.tiling import TileSpec
from tests.conftest import RASTERS

LANDSAT = RASTERS / "landsat8"
#: Landsat 8 OLI: band 2 blue, 3 green, 4 red, 5 NIR (USGS).
LANDSAT_BANDS = {"B2": "blue", "B3": "green", "B4": "red", "B5": "nir08"}


def item(item_id, assets, when="2015-08-04T16:19:21Z", bounds=None):
    """A STAC 1.0 item as a STAC API returns it."""
    if bounds is None:
        with rasterio.open(LANDSAT / "l8_B4.tif") as src:
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
            "geometry": mapping(box(*bounds)), "bbox": list(bounds), "properties": {"datetime": when},
            "links": [], "assets": assets}


def landsat_item(item_id="LC80200392015216LGN00", keys=LANDSAT_BANDS, common_names=True, folder="landsat8"):
    assets = {key: {"href": f"{folder}/l8_{band}.tif", "type": "image/tiff; application=geotiff",
                    "roles": ["data"], **({"eo:bands": [{"name": band, "common_name": name}]} if common_names else {})}
              for band, (key, name) in zip(LANDSAT_BANDS, ((k, LANDSAT_BANDS[b]) for b, k in zip(LANDSAT_BANDS, keys)))}
    assets["MTL.txt"] = {"href": f"{folder}/l8_MTL.txt", "type": "text/plain", "roles": ["metadata"]}
    return item(item_id, assets)


def write_collection(folder, *items):
    path = folder / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(items)}))
    return path


@pytest.fixture()
def landsat_folder(tmp_path):
    (tmp_path / "landsat8").symlink_to(LANDSAT)
    return tmp_path


@pytest.mark.parametrize("keys, common_names", [
    (tuple(LANDSAT_BANDS), True),  # USGS keys, roles from eo:bands common names
    (("blue", "green", "red", "nir"), False),  # roles from asset keys
    (("B02", "B03", "B04", "B08"), False),  # Sentinel-2's keys
])
def test_band_per_file_item_reads_as_one_scene_with_the_band_files_pixels(landsat_folder, keys, common_names):
    path = write_collection(landsat_folder, landsat_item(keys=keys, common_names=common_names))
    [source] = resolve_sources(stac=str(path))
    assert [role for role, _ in source.band_files] == ["red", "green", "blue", "nir"]
    assert source.acquired.startswith("2015-08-04T16:19:21") and source.scene_id == "LC80200392015216LGN00"
    spec = TileSpec(min_valid_fraction=0.0)
    with spec.open(source) as reader:
        assert reader.bands == ("red", "green", "blue", "nir") and reader.shape == (603, 627)
        reads = list(reader.read_tiles(spec.tiles(reader)))
    assert len(reads) == 9
    files = {role: rasterio.open(LANDSAT / f"l8_{band}.tif") for band, role in
             zip(LANDSAT_BANDS, ("blue", "green", "red", "nir"))}
    try:
        for read in reads:
            col, row = (round(v) for v in ~files["red"].transform * (read.tile.transform[2], read.tile.transform[5]))
            window = Window(col, row, 256, 256)
            expected = np.stack([files[r].read(1, window=window, boundless=True, fill_value=0)
                                 for r in ("red", "green", "blue", "nir")], axis=-1)
            inside = np.zeros((256, 256), dtype=bool)
            inside[: max(0, 603 - row), : max(0, 627 - col)] = True
            assert np.array_equal(read.image[inside], expected[inside]), read.tile.tile_id
            assert read.valid_fraction == pytest.approx(inside.mean())
    finally:
        for src in files.values():
            src.close()


def test_an_item_missing_a_band_asset_is_a_clear_error(landsat_folder):
    broken = landsat_item()
    del broken["assets"]["B2"]
    path = write_collection(landsat_folder, broken)
    with pytest.raises(stac.StacError, match=r"item 'LC80200392015216LGN00' has one asset per band but no blue band "
                                             r"asset \(its band assets: B3 \(green\), B4 \(red\), B5 \(nir\)\)"):
        resolve_sources(stac=str(path))


def test_band_files_of_different_grids_are_refused_not_resampled(tmp_path):
    with rasterio.open(LANDSAT / "l8_B4.tif") as src:
        profile, data = src.profile, src.read(1)
    profile.update(width=300, height=300, transform=src.transform * src.transform.scale(2))
    with rasterio.open(tmp_path / "coarse.tif", "w", **profile) as dst:
        dst.write(data[:300, :300], 1)
    source = SceneSource(str(LANDSAT / "l8_B4.tif"), "mixed", band_files=(
        ("red", str(LANDSAT / "l8_B4.tif")), ("green", str(tmp_path / "coarse.tif")), ("blue", str(LANDSAT / "l8_B2.tif"))))
    with pytest.raises(SceneError, match=r"green band .*coarse.tif: its grid \(300x300 px, 60 m, uint16\) differs"):
        SceneReader(source)


def test_planet_item_gives_its_scene_product_and_udm2(tmp_path):
    assets = {"ortho_analytic_4b_sr": {"href": "scenes/a_3B_AnalyticMS_SR.tif", "type": "image/tiff; application=geotiff",
                                       "roles": ["data"]},
              "ortho_udm2": {"href": "scenes/a_3B_udm2.tif", "type": "image/tiff; application=geotiff"},
              "thumbnail": {"href": "https://example.com/a.png", "type": "image/png", "roles": ["thumbnail"]}}
    path = write_collection(tmp_path, item("a", assets, "2026-06-01T13:30:00Z", (-56, -10, -55.9, -9.9)))
    [source] = resolve_sources(stac=str(path))
    assert source == SceneSource(str(tmp_path / "scenes" / "a_3B_AnalyticMS_SR.tif"), "a", "2026-06-01T13:30:00+00:00",
                                 "surface_reflectance", str(tmp_path / "scenes" / "a_3B_udm2.tif"))


@pytest.mark.parametrize("document, message", [
    ({"type": "Feature"}, "not a STAC ItemCollection"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "id": "x"}]}, "not a valid STAC ItemCollection"),
])
def test_what_is_not_stac_is_named(tmp_path, document, message):
    path = tmp_path / "items.json"
    path.write_text(json.dumps(document))
    with pytest.raises(stac.StacError, match=f"{path}: {message}"):
        resolve_sources(stac=str(path))


def test_gdal_paths_inside_a_vrt():
    assert stac.gdal_path("gs://bucket/LC08/B4.TIF") == "/vsigs/bucket/LC08/B4.TIF"
    assert stac.gdal_path("https://landsat.example/B4.TIF") == "/vsicurl/https://landsat.example/B4.TIF"
    assert stac.gdal_path("/data/B4.TIF") == "/data/B4.TIF"
