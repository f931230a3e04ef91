"""STAC ItemCollections: Planet-style items (one file, a UDM2 asset) and band-per-file items (the real
Landsat 8 bands in the shared data), read as one scene with rasterio's own reads of the band files as oracle."""

import json
import re

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box, mapping

from pipelines.geo.tiling import TileSpec
from pipelines.sources import stac
from pipelines.sources.base import DateRange, SceneItem
from pipelines.sources.reader import ReadOptions, SceneError, SceneReader, gdal_path
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
    (tuple(LANDSAT_BANDS), False),  # USGS keys alone: Landsat 8's numbering (B2 blue ... B5 nir), not Landsat 7's
    (("blue", "green", "red", "nir"), False),  # roles from asset keys
    (("B02", "B03", "B04", "B08"), False),  # Sentinel-2's keys
])
@pytest.mark.parametrize("threads", [1, 3])  # 3: two more copies of the band VRT, each read on its own thread
def test_band_per_file_item_reads_as_one_scene_with_the_band_files_pixels(landsat_folder, keys, common_names,
                                                                        threads):
    path = write_collection(landsat_folder, landsat_item(keys=keys, common_names=common_names))
    [source] = stac.StacItems(str(path)).discover()
    assert [role for role, _ in source.band_files] == ["red", "green", "blue", "nir"]
    assert source.acquired.startswith("2015-08-04T16:19:21") and source.scene_id == "LC80200392015216LGN00"
    spec = TileSpec(min_valid_fraction=0.0)
    with ReadOptions().open(source) as reader:
        assert reader.bands == ("red", "green", "blue", "nir") and reader.shape == (603, 627)
        reads = list(reader.read_tiles(spec.tiles(reader.grid), threads=threads))
    assert len(reads) == 9
    bands = {role: rasterio.open(LANDSAT / f"l8_{band}.tif") for band, role in
             zip(LANDSAT_BANDS, ("blue", "green", "red", "nir"))}
    try:
        for read in reads:
            col, row = (round(v) for v in ~bands["red"].transform * (read.tile.transform[2], read.tile.transform[5]))
            window = Window(col, row, 256, 256)
            expected = np.stack([bands[r].read(1, window=window, boundless=True, fill_value=0)
                                 for r in ("red", "green", "blue", "nir")], axis=-1)
            inside = np.zeros((256, 256), dtype=bool)
            inside[: max(0, 603 - row), : max(0, 627 - col)] = True
            assert np.array_equal(read.image[inside], expected[inside]), read.tile.tile_id
            assert read.valid_fraction == pytest.approx(inside.mean())
    finally:
        for src in bands.values():
            src.close()


def test_an_item_missing_a_band_asset_is_a_clear_error(landsat_folder):
    broken = landsat_item()
    del broken["assets"]["B2"]
    path = write_collection(landsat_folder, broken)
    with pytest.raises(stac.StacError, match=r"item 'LC80200392015216LGN00' has one asset per band but no blue band "
                                             r"asset \(its band assets: B3 \(green\), B4 \(red\), B5 \(nir\)\)"):
        stac.StacItems(str(path)).discover()


def test_band_files_of_different_grids_are_refused_not_resampled(tmp_path):
    with rasterio.open(LANDSAT / "l8_B4.tif") as src:
        profile, data = src.profile, src.read(1)
    profile.update(width=300, height=300, transform=src.transform * src.transform.scale(2))
    with rasterio.open(tmp_path / "coarse.tif", "w", **profile) as dst:
        dst.write(data[:300, :300], 1)
    source = SceneItem(
        str(LANDSAT / "l8_B4.tif"),
        "mixed",
        band_files=(
            ("red", str(LANDSAT / "l8_B4.tif")),
            ("green", str(tmp_path / "coarse.tif")),
            ("blue", str(LANDSAT / "l8_B2.tif")),
        ),
    )
    with pytest.raises(SceneError, match=r"green band .*coarse.tif: its grid \(300x300 px, 60 m, uint16\) differs"):
        SceneReader(source)


def test_planet_item_gives_its_scene_product_and_udm2(tmp_path):
    assets = {
        "ortho_analytic_4b_sr": {
            "href": "scenes/a_3B_AnalyticMS_SR.tif",
            "type": "image/tiff; application=geotiff",
            "roles": ["data"],
        },
        "ortho_udm2": {"href": "scenes/a_3B_udm2.tif", "type": "image/tiff; application=geotiff"},
        "thumbnail": {"href": "https://example.com/a.png", "type": "image/png", "roles": ["thumbnail"]},
    }
    path = write_collection(tmp_path, item("a", assets, "2026-06-01T13:30:00Z", (-56, -10, -55.9, -9.9)))
    [source] = stac.StacItems(str(path)).discover()
    assert source == SceneItem(str(tmp_path / "scenes" / "a_3B_AnalyticMS_SR.tif"), "a", "2026-06-01T13:30:00+00:00",
                                 "surface_reflectance", str(tmp_path / "scenes" / "a_3B_udm2.tif"))


@pytest.mark.parametrize("document, message", [
    ({"type": "Feature"}, "not a STAC ItemCollection"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "id": "x"}]}, "not a valid STAC ItemCollection"),
])
def test_what_is_not_stac_is_named(tmp_path, document, message):
    path = tmp_path / "items.json"
    path.write_text(json.dumps(document))
    with pytest.raises(stac.StacError, match=f"{path}: {message}"):
        stac.StacItems(str(path)).discover()


def test_gdal_paths_inside_a_vrt():
    assert gdal_path("gs://bucket/LC08/B4.TIF") == "/vsigs/bucket/LC08/B4.TIF"
    assert gdal_path("https://landsat.example/B4.TIF") == "/vsicurl/https://landsat.example/B4.TIF"
    assert gdal_path("/data/B4.TIF") == "/data/B4.TIF"


def test_discovery_leaves_out_items_outside_the_aoi_or_the_dates_from_their_metadata_alone(tmp_path):
    """Items are chosen before any file is opened: their hrefs here point nowhere."""
    def planet(item_id, when, bounds):
        return item(item_id, {"analytic": {"href": f"scenes/{item_id}.tif", "type": "image/tiff; application=geotiff",
                                           "roles": ["data"]}}, when, bounds)

    path = write_collection(tmp_path, planet("june-here", "2026-06-10T13:00:00Z", (-56, -10, -55.9, -9.9)),
                            planet("june-there", "2026-06-11T13:00:00Z", (-50, -5, -49.9, -4.9)),
                            planet("may-here", "2026-05-31T23:59:59Z", (-56, -10, -55.9, -9.9)))
    items = stac.StacItems(str(path))
    assert [i.scene_id for i in items.discover()] == ["june-here", "june-there", "may-here"]
    assert [i.scene_id for i in items.discover(box(-56.5, -10.5, -55.5, -9.5))] == ["june-here", "may-here"]
    june = DateRange.parse("2026-06-01/2026-06-30")
    assert [i.scene_id for i in items.discover(when=june)] == ["june-here", "june-there"]
    assert [i.scene_id for i in items.discover(box(-56.5, -10.5, -55.5, -9.5), june)] == ["june-here"]
    assert [i.scene_id for i in items.discover(when=DateRange.parse("/2026-05-31"))] == ["may-here"]


@pytest.mark.parametrize("text, message", [
    ("2026-06-31/", "write START/END as YYYY-MM-DD"), ("June", "write START/END"),
    ("2026-07-01/2026-06-01", "the start is after the end"),
])
def test_acquired_ranges_that_mean_nothing_are_refused(text, message):
    with pytest.raises(ValueError, match=f"--acquired '{re.escape(text)}': {message}"):
        DateRange.parse(text)


def test_one_day_and_times_of_other_zones():
    day = DateRange.parse("2026-06-01")
    assert day.holds("2026-06-01T23:30:00Z") and not day.holds("2026-06-02T00:00:00Z")
    assert day.holds("2026-06-01T21:30:00-02:00") is True  # 23:30 UTC on the 1st
    assert day.holds("2026-06-01T22:30:00-02:00") is False  # 00:30 UTC on the 2nd: days are UTC days
    assert day.holds(None) is None


def test_items_without_geometry_or_datetime_are_kept_and_an_interval_is_dated_by_its_start(tmp_path):
    """STAC allows a null geometry, and a null datetime with ``start_datetime``/``end_datetime``: an item the
    metadata cannot place is kept (its pixels decide), and an interval counts from its start."""
    tiff = {"href": "scenes/s.tif", "type": "image/tiff; application=geotiff", "roles": ["data"]}
    nowhere = item("nowhere", {"analytic": tiff}, "2026-06-10T13:00:00Z")
    nowhere["geometry"] = None
    del nowhere["bbox"]
    spans = item("spans", {"analytic": tiff}, None, (-56, -10, -55.9, -9.9))
    spans["properties"].update(start_datetime="2026-05-31T20:00:00Z", end_datetime="2026-06-02T04:00:00Z")
    items = stac.StacItems(str(write_collection(tmp_path, nowhere, spans)))
    assert [i.scene_id for i in items.discover(box(-56.5, -10.5, -55.5, -9.5))] == ["nowhere", "spans"]
    assert [i.scene_id for i in items.discover(when=DateRange.parse("2026-05-01/2026-05-31"))] == ["spans"]
    assert [i.scene_id for i in items.discover(when=DateRange.parse("2026-06-01/2026-06-30"))] == ["nowhere"]
    assert [i.acquired for i in items.discover()] == ["2026-06-10T13:00:00+00:00", "2026-05-31T20:00:00+00:00"]


def test_which_asset_is_the_scene_or_a_band(tmp_path):
    tiff = "image/tiff; application=geotiff"

    def scene(assets):
        [found] = stac.StacItems(str(write_collection(tmp_path, item("x", assets)))).discover()
        return found

    # Without roles: the named keys in the order analytic, visual, image, data; a key that says no product
    # leaves the product to the file's own tags.
    found = scene({"visual": {"href": "v.tif", "type": tiff}, "analytic": {"href": "a.tif", "type": tiff}})
    assert found.uri.endswith("/a.tif") and found.product == "analytic"
    assert scene({"image": {"href": "i.tif", "type": tiff}}).product is None
    # A file of two or more bands is a scene of its own, never one of a scene's bands.
    two = {"href": "rn.tif", "type": tiff, "roles": ["data"],
           "eo:bands": [{"name": "b1", "common_name": "red"}, {"name": "b2", "common_name": "nir"}]}
    assert scene({"rn": two}).uri.endswith("/rn.tif") and scene({"rn": two}).band_files == ()
    # Two assets of one band (a COG and its JP2 copy): the first is read.
    bands = {key: {"href": f"{key}.tif", "type": tiff, "roles": ["data"], "eo:bands": [{"common_name": role}]}
             for key, role in (("blue", "blue"), ("green", "green"), ("red", "red"))}
    bands["red-jp2"] = {"href": "red.jp2", "type": "image/jp2", "roles": ["data"], "eo:bands": [{"common_name": "red"}]}
    assert dict(scene(bands).band_files)["red"].endswith("/red.tif")
    # A band described without a common name is not guessed from its key: B4 is red in Landsat 8, NIR in 7.
    named = {f"B{i}": {"href": f"B{i}.tif", "type": tiff, "roles": ["data"], "eo:bands": [{"name": f"B{i}"}]}
             for i in range(2, 6)}
    assert stac.band_assets(pystac.Item.from_dict(item("x", named))) == {}
