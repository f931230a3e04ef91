"""Clearings on hand-built before/after arrays, against hand-worked answers and pyproj's scale factors."""

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Proj, Transformer
from shapely import ops

from pipelines.analysis import clearings
from pipelines.analysis.clearings import NDVI, NGRDI, Observation

CRS_UTM = "EPSG:32721"
ORIGIN = (600_000.0, 8_899_998.0)
TRANSFORM = Affine(3.0, 0.0, ORIGIN[0], 0.0, -3.0, ORIGIN[1])
RGBN = ("red", "green", "blue", "nir")
#: Surface reflectance x 10,000 (red, green, blue, nir): forest and a fresh field.
FOREST = np.array([330, 600, 350, 3000], np.float32)
FIELD = np.array([950, 1050, 700, 2500], np.float32)


def scene(size: int = 200, seed: int = 0) -> np.ndarray:
    """Forest with a 10 % texture, the same factor in every band (as canopy shading is)."""
    rng = np.random.default_rng(seed)
    texture = 1 + 0.1 * rng.standard_normal((size, size, 1)).astype(np.float32)
    return FOREST * texture


def clear(image: np.ndarray) -> Observation:
    return Observation(image, np.ones(image.shape[:2], bool))


def test_otsu_splits_two_groups_between_them():
    values = np.concatenate([np.full(60, 0.1), np.full(40, 0.9)])
    assert 0.1 <= clearings.otsu(values) < 0.9
    assert clearings.otsu(np.full(5, 0.3)) == 0.3


def test_the_index_follows_the_bands():
    pixel = np.array([[[330, 600, 350, 3000]]], np.float32)
    name, ndvi = clearings.vegetation_index(pixel, RGBN)
    assert name == NDVI and ndvi[0, 0] == pytest.approx((3000 - 330) / 3330)
    name, ngrdi = clearings.vegetation_index(pixel[..., :3], RGBN[:3])
    assert name == NGRDI and ngrdi[0, 0] == pytest.approx((600 - 330) / 930)


@pytest.mark.parametrize("bands", [RGBN, RGBN[:3]])
def test_a_cleared_square_is_found_whole(bands):
    before = scene()
    after = scene(seed=1)
    after[60:100, 80:140] = FIELD  # 40 x 60 pixels: 2.16 ha at 3 m
    n = len(bands)
    change = clearings.detect(clear(before[..., :n]), clear(after[..., :n]), bands, min_pixels=20)
    expected = np.zeros(before.shape[:2], bool)
    expected[60:100, 80:140] = True
    assert np.array_equal(change.changed, expected)
    assert change.judged_share == 1.0 and change.threshold >= clearings.FLOORS[change.index]

    (outline, area), = clearings.polygons(change.changed, CRS_UTM, TRANSFORM, min_ha=1.0)
    # The planar UTM area over pyproj's areal scale factor at the square's centre: the ellipsoid's area.
    lon, lat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True).transform(
        *(TRANSFORM * (110, 80)))
    scale = Proj(CRS(CRS_UTM)).get_factors(lon, lat).areal_scale
    assert area == pytest.approx(40 * 60 * 9 / 1e4 / scale, rel=1e-4)
    to_utm = Transformer.from_crs("EPSG:4326", CRS_UTM, always_xy=True).transform
    square = shapely.box(*(TRANSFORM * (80, 100)), *(TRANSFORM * (140, 60)))
    assert len(outline.exterior.coords) == 5 and ops.transform(to_utm, outline).symmetric_difference(square).area < 1e-3


def test_a_brighter_hazier_second_date_is_no_change():
    before = scene()
    haze = np.array([1900, 1950, 2050, 2500], np.float32)
    after = scene(seed=1) * 0.6 + haze * 0.4  # 40 % haze: more light, less contrast, NDVI down by 0.35
    change = clearings.detect(clear(before), clear(after), RGBN, min_pixels=20)
    assert not change.changed.any()
    # without the normalisation, the same pair is one big "clearing"
    raw_drop = clearings.vegetation_index(before, RGBN)[1] - clearings.vegetation_index(after, RGBN)[1]
    assert (raw_drop > clearings.FLOORS[NDVI]).mean() > 0.9


def test_half_under_cloud_only_the_clear_half_is_delineated_and_judged():
    before = scene()
    after = scene(seed=1)
    after[60:100, 80:140] = FIELD
    usable = np.ones(before.shape[:2], bool)
    usable[:, 110:] = False  # the second date's cloud mask: the east of column 110 is not clear
    change = clearings.detect(clear(before), Observation(after, usable), RGBN, min_pixels=20)
    expected = np.zeros(before.shape[:2], bool)
    expected[60:100, 80:110] = True
    assert np.array_equal(change.changed, expected)
    assert change.judged_share == pytest.approx(110 / 200)


def test_speckle_and_small_clearings_are_dropped():
    before = scene()
    after = scene(seed=1)
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 200, 300), rng.integers(0, 200, 300)
    after[rows, cols] = FIELD  # single pixels: selective-logging-like speckle
    after[20:30, 20:30] = FIELD  # 100 pixels = 0.09 ha
    change = clearings.detect(clear(before), clear(after), RGBN, min_pixels=112)  # 1 ha of 9 m2 pixels
    assert not change.changed.any()


def test_forest_without_change_has_no_clearing_whatever_the_rule():
    before, after = scene(), scene(seed=1)
    change = clearings.detect(clear(before), clear(after), RGBN)
    assert not change.changed.any() and change.threshold == clearings.FLOORS[NDVI]
    for rule in clearings.RULES:  # Otsu splits the noise, the opening removes it: nothing is left either way
        assert not clearings.detect(clear(before), clear(after), RGBN, 112, rule).changed.any()


def test_uneven_haze_is_normalised_locally():
    """Haze that thickens across the frame (too thin for a mask): the forest's NDVI falls by 0.1 to 0.3 from
    west to east. The clearing under it is found whole and nothing else is."""
    before = scene()
    after = scene(seed=1)
    after[60:100, 80:140] = FIELD
    alpha = np.linspace(0.1, 0.4, 200, dtype=np.float32)[None, :, None]
    haze = np.array([2050, 1950, 1900, 2500], np.float32)
    after = after * (1 - alpha) + haze * alpha
    change = clearings.detect(clear(before), clear(after), RGBN, min_pixels=20)
    expected = np.zeros(before.shape[:2], bool)
    expected[60:100, 80:140] = True
    assert (change.changed == expected).mean() > 0.995 and change.changed[60:100, 80:140].mean() > 0.98


def test_frame_is_the_alert_tiles_with_a_tile_of_margin_on_whole_pixels():
    to_lonlat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True).transform
    tile = ops.transform(to_lonlat, shapely.box(ORIGIN[0], ORIGIN[1] - 768, ORIGIN[0] + 768, ORIGIN[1]))
    where = clearings.frame([tile], CRS_UTM, 3.0)
    assert where.size == 768 and where.crs == CRS_UTM
    assert where.transform[2] == pytest.approx(ORIGIN[0] - 768, abs=3)
    assert where.transform[5] == pytest.approx(ORIGIN[1] + 768, abs=3)
    assert where.transform[2] % 3 == 0 and where.transform[5] % 3 == 0
