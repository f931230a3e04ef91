"""The scan's checks before any work, at their cuts: a scene's own ground pixel against the bundle's
(refused beyond 10 %), and a grid's ground pixel over the AOI (refused beyond 10 % on UTM, reported beyond
25 % elsewhere). Ground pixels are measured here with pyproj's geodesic distances, apart from the code."""

import logging

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod
from shapely.geometry import box

from pipelines.geo.tiling import TileSpec
from pipelines.sources import files
from pipelines.sources.reader import ReadOptions
from pipelines.steps import scan_setup
from planet_core.errors import UserError
from tests import bundles

GSD = 3.0
LAT = -10.0
READ = ReadOptions(band_order=("blue", "green", "red", "nir"))


@pytest.fixture(scope="module")
def meta(tmp_path_factory):
    return bundles.tiny(tmp_path_factory.mktemp("bundle") / "b", dtype="uint16", product="analytic")[1]


def _scene(path, pixel=GSD, product=None, dtype="uint16", bands=4):
    """A 64-px scene of ``pixel`` metres in UTM 21S (near its central meridian: scale ~0.9996) at the AOI of
    these tests, tagged with ``product`` (none: unknown); its bands red, green, blue by colour
    interpretation, and a fourth (NIR: the one undefined band of four)."""
    from rasterio.enums import ColorInterp

    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=bands, dtype=dtype, crs="EPSG:32721",
                       transform=Affine(pixel, 0, 500_000, 0, -pixel, 8_894_000), nodata=0) as dst:
        dst.write(np.full((bands, 64, 64), 100, dtype))
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined][:bands]
        if product:
            dst.update_tags(product=product)
    return files.item(str(path))


def _geodesic_pixel(item):
    with rasterio.open(item.uri) as src:
        lon_lat = rasterio.warp.transform(src.crs, "EPSG:4326", [src.transform.c, src.transform.c + src.res[0]],
                                          [src.transform.f, src.transform.f])
    return Geod(ellps="WGS84").inv(lon_lat[0][0], lon_lat[1][0], lon_lat[0][1], lon_lat[1][1])[2]


@pytest.mark.parametrize("share, refused", [(0.0, False), (0.09, False), (-0.09, False), (0.11, True), (-0.11, True)])
def test_a_scene_more_than_10_percent_off_the_bundles_pixel_is_refused(meta, tmp_path, share, refused):
    item = _scene(tmp_path / "s_analytic.tif", GSD * (1 + share))
    measured = _geodesic_pixel(item) / GSD - 1
    assert abs(measured - share) < 0.005  # the scene is what the case says, by pyproj
    region = box(-57.1, -10.05, -56.9, -9.95)
    call = lambda allow: scan_setup.check_scenes([item], meta, READ, "analytic", region, allow)  # noqa: E731
    if refused:
        with pytest.raises(UserError, match=r"more than 10% off.*--allow_resampling"):
            call(False)
    else:
        call(False)
    call(True)  # --allow_resampling: the user knows


@pytest.mark.parametrize("share, warned", [(0.20, False), (0.24, False), (0.26, True), (0.32, True)])
def test_a_web_mercator_pixel_more_than_25_percent_off_is_reported(caplog, share, warned):
    """WebMercatorQuad z17 at 10 S: a pixel is 360 / 2^25 degrees of longitude, whose length on the
    ellipsoid pyproj gives; the bundle's gsd set so that the grid is ``share`` coarser."""
    ground = Geod(ellps="WGS84").inv(-57.0, LAT, -57.0 + 360 / 2 ** 25, LAT)[2]
    spec = TileSpec(grid="WebMercatorQuad", zoom=17)
    region = box(-57.001, LAT - 0.001, -56.999, LAT + 0.001)
    with caplog.at_level(logging.WARNING, logger="pipelines.steps.scan_setup"):
        low, high = scan_setup.check_resolution(spec, region, ground / (1 + share))
    assert low == pytest.approx(ground, rel=5e-3) and high == pytest.approx(ground, rel=5e-3)
    assert ("objects look" in caplog.text) == warned


@pytest.mark.parametrize("share, refused", [(0.08, False), (0.12, True)])
def test_a_utm_grid_more_than_10_percent_off_over_the_aoi_is_refused(share, refused):
    """A UTM grid of 3 m cells: its ground pixel is 3 m x the zone's scale factor; a bundle of another gsd
    puts it ``share`` off."""
    spec = TileSpec(grid="UTM", cell_size=GSD, utm_zone="21S")
    region = box(-57.01, LAT - 0.01, -56.99, LAT + 0.01)
    if refused:
        with pytest.raises(UserError, match="more than 10% off"):
            scan_setup.check_resolution(spec, region, GSD / (1 + share))
    else:
        low, high = scan_setup.check_resolution(spec, region, GSD / (1 + share))
        assert low == pytest.approx(GSD * 0.9996, rel=1e-3)


HERE = box(-57.1, -10.05, -56.9, -9.95)


def test_a_scene_of_another_product_refuses_the_scan_unless_the_user_says_what_it_is(meta, tmp_path):
    """The bundle is analytic. Scenes named by a tag: visual ones refuse the scan, naming three and how
    many more; ``--product`` overrides what the files say; a scene of unknown product passes."""
    visual = [_scene(tmp_path / f"v{i}.tif", product="visual") for i in range(5)]
    with pytest.raises(UserError, match=r"trained on analytic imagery; .*v0.tif is visual; .*v2.tif is visual "
                                        r"and 2 more\. Scan analytic scenes, or pass --product analytic"):
        scan_setup.check_scenes(visual, meta, READ, None, HERE)
    assert scan_setup.check_scenes(visual, meta, READ, "analytic", HERE) == []
    assert scan_setup.check_scenes([_scene(tmp_path / "u.tif")], meta, READ, None, HERE) == []


def test_scenes_without_the_bundles_bands_or_dtype_fail_alone_and_refuse_the_scan_when_none_can(meta, tmp_path):
    import dataclasses

    good = _scene(tmp_path / "g.tif", product="analytic")
    small = _scene(tmp_path / "b.tif", product="analytic", dtype="uint8")
    [failed] = scan_setup.check_scenes([good, small], meta, READ, None, HERE)
    assert failed["uri"] == small.uri and failed["reason"].startswith("dtype: it is uint8, the bundle was trained on "
                                                                      "uint16")
    assert scan_setup.check_scenes([good, small], meta, READ, "analytic", HERE) == []  # --product: the user knows
    with_nir = dataclasses.replace(meta, bands=("red", "green", "blue", "nir"))
    rgb = _scene(tmp_path / "rgb.tif", product="analytic", bands=3)
    [failed] = scan_setup.check_scenes([good, rgb], with_nir, ReadOptions(), None, HERE)
    assert failed["reason"] == "bands: it provides red, green, blue, not nir"
    with pytest.raises(UserError, match=r"the bundle needs bands red, green, blue, nir \(uint16\); no scene can give"):
        scan_setup.check_scenes([rgb], with_nir, ReadOptions(), None, HERE)


def test_scenes_the_aoi_misses_fail_the_run_but_not_when_one_could_not_be_opened(meta, tmp_path):
    from planet_core.errors import RunFailed

    scenes = [_scene(tmp_path / "a.tif", product="analytic"), _scene(tmp_path / "b.tif", product="analytic")]
    far = box(10, 10, 11, 11)
    with pytest.raises(RunFailed, match="the AOI touches none of the 2 scenes"):
        scan_setup.check_scenes(scenes, meta, READ, None, far)
    broken = files.item(str(tmp_path / "gone.tif"))
    assert scan_setup.check_scenes([*scenes, broken], meta, READ, None, far) == []  # its lines say the rest
    with pytest.raises(UserError, match="gone.tif: cannot open"):  # one scene: its problem is the run's
        scan_setup.check_scenes([broken], meta, READ, None, far)


def test_a_grid_error_names_the_bundles_chip_size_only_when_it_is_about_it(meta):
    """The tiles' size is the bundle's chip size: WebMercatorQuad's 256-px tiles refuse a 32-px bundle's, and
    the error says where 32 comes from; an error about another flag does not say it (it did, of every flag)."""
    from pipelines import scan

    region = box(-56.01, -10.01, -56.0, -10.0)
    parse = scan.build_parser().parse_args
    args = parse(["--aoi", "a.geojson", "--bundle", "b", "--output", "o", "--grid", "WebMercatorQuad", "--zoom", "15"])
    with pytest.raises(UserError, match=r"tiles of 32 px: .* \(the bundle was trained on 32-px chips\)$"):
        scan_setup.tile_spec(args, meta, region)
    args = parse(["--aoi", "a.geojson", "--bundle", "b", "--output", "o", "--zoom", "15"])
    with pytest.raises(UserError, match=r"^--zoom applies to --grid WebMercatorQuad, not to the UTM grid$"):
        scan_setup.tile_spec(args, meta, region)
