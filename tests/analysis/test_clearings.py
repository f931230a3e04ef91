"""Clearings on hand-built before/after arrays, against hand-worked answers and pyproj's scale factors."""

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Geod, Proj, Transformer
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


def test_otsus_cut_is_the_upper_edge_of_the_low_classs_last_bin():
    """Hand-worked: [0, 0.9, 3, 3] in 3 bins (edges 0, 1, 2, 3) count 2, 0, 2; the between-class variance
    is 16 with the first bin low, 16 with two, 0 with all three: the first split wins, and the cut is its
    upper edge, 1, so every value it put in the low class is at or under the cut (the bin's centre, 0.5,
    would leave 0.9 above it)."""
    assert clearings.otsu(np.array([0.0, 0.9, 3.0, 3.0]), bins=3) == 1.0


def test_the_forest_cut_is_three_scaled_deviations_under_the_upper_halfs_median_or_the_floor():
    """Hand-worked: four field pixels at 0.1 and forest at 0.7, 0.8, 0.8, 0.9. The upper half (at or above
    the median, 0.4) is the forest: its median 0.8, its absolute deviations' median 0.05, scaled by 1.4826
    to a standard deviation, three of which (0.222) exceed NDVI's floor (0.12): the cut is 0.578. Uniform
    forest has no spread: the floor sets the cut."""
    index = np.array([0.1, 0.1, 0.1, 0.1, 0.7, 0.8, 0.8, 0.9])
    assert clearings.forest_cut(index, NDVI) == pytest.approx(0.8 - 3 * 1.4826 * 0.05)
    assert clearings.forest_cut(np.full(8, 0.8), NDVI) == pytest.approx(0.8 - 0.12)
    assert clearings.forest_cut(np.array([]), NDVI) == np.inf


@pytest.mark.parametrize(("drops", "rule", "expected"), [
    ([0.0, 0.0, 0.05, 0.05], clearings.FLOOR, 0.12),
    ([0.0, 0.0, 0.05, 0.05], clearings.OTSU_FLOOR, 0.12),  # Otsu's cut under the floor: the floor
    ([0.0, 0.0, 0.05, 0.05], clearings.OTSU, 0.05 / 256),  # Otsu's own: the first bin's upper edge
    ([0.3, 0.3, 0.6, 0.6], clearings.OTSU_FLOOR, 0.3 + 0.3 / 256),  # over the floor: Otsu's
])
def test_each_threshold_rule_on_hand_worked_drops(drops, rule, expected):
    assert clearings.threshold_of(np.array(drops), NDVI, rule) == pytest.approx(expected)


def test_a_frame_with_too_little_forest_on_both_dates_is_not_normalised():
    """Under 5 % of the usable pixels forest on both dates: too little invariant ground to fit an offset
    on, so the second date is left as it is. Here the north half was forest and is fields but for its first
    rows, the south half the reverse, and the second date is 50 brighter in every band."""
    for rows, normalised in ((4, False), (6, True)):  # 4 % and 6 % of the frame forest on both dates
        before = np.tile(FIELD, (100, 100, 1))
        before[:50] = FOREST
        after = np.tile(FOREST + 50, (100, 100, 1))
        after[rows:50] = FIELD + 50
        out = clearings.normalise(clear(before), clear(after), RGBN)
        if normalised:
            assert np.allclose(out, after - 50), "the forest's offset, 50, taken off everywhere"
        else:
            assert np.array_equal(out, after)


def test_a_clearing_of_exactly_the_smallest_size_is_kept():
    before, after = scene(), scene(seed=1)
    after[60:64, 80:84] = FIELD  # 16 pixels
    assert clearings.detect(clear(before), clear(after), RGBN, min_pixels=16).changed.sum() == 16
    assert not clearings.detect(clear(before), clear(after), RGBN, min_pixels=17).changed.any()


def test_polygons_come_largest_first():
    changed = np.zeros((50, 50), bool)
    changed[2:6, 2:6] = True  # 16 pixels
    changed[20:40, 20:40] = True  # 400
    changed[10:12, 40:48] = True  # 16 x ... 16 pixels too, smaller than the second
    areas = [area for _, area in clearings.polygons(changed, CRS_UTM, TRANSFORM, min_ha=0.0)]
    assert len(areas) == 3 and areas == sorted(areas, reverse=True) and areas[0] == pytest.approx(0.36, rel=1e-2)


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


def test_plan_puts_the_clearest_scene_of_each_date_first():
    """Pictures and delineation start from the scene that saw the event clearest (by the clear fractions the
    scan recorded over its frame), not from the one that gave the scan the most tiles; without masks, the
    one with the most tiles."""
    import datetime as dt

    import duckdb

    from pipelines.analysis.events import Event
    from pipelines.analysis.rules import Alert
    from pipelines.sources.base import SceneItem

    before, after = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    tile = shapely.box(-55.0, -10.0, -54.99, -9.99)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planet_tiles")
    con.execute("CREATE TABLE planet_tiles.tile_labels (aoi VARCHAR, scan_date DATE, scene_id VARCHAR, "
                "clear_fraction FLOAT, bbox STRUCT(xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE))")
    rows = [  # (date, scene, clear fraction, tiles): on each date, the scene with most tiles is the cloudier
        (before, "b_many_cloudy", 0.1, 3), (before, "b_few_clear", 0.9, 2),
        (after, "a_many_unmasked", None, 3), (after, "a_few_unmasked", None, 2),
        (after, "far_away", 1.0, 5),
    ]
    for date, scene_id, fraction, n in rows:
        west = 10.0 if scene_id == "far_away" else -55.0
        for _ in range(n):
            con.execute("INSERT INTO planet_tiles.tile_labels VALUES ('a', ?, ?, ?, {'xmin': ?, 'ymin': -10.0, "
                        "'xmax': ?, 'ymax': -9.99})", [date, scene_id, fraction, west, west + 0.01])
    alert = Alert("x", "a", "t", before, "b_many_cloudy", after, "a_few_unmasked", None, ("agriculture",), 0.9,
                  "high", None, "active", None, after, shapely.to_wkb(tile), -54.995, -9.995, 1e4)
    event = Event("e", "a", after, after, 1, 1.0, (("agriculture", 1),), "high", "active", ("x",), (),
                  shapely.to_wkb(tile), -54.995, -9.995, before, "b_many_cloudy", "a_few_unmasked")
    items = {r[1]: SceneItem(uri=f"/s/{r[1]}.tif", scene_id=r[1]) for r in rows}
    [work] = clearings.plan(con, [event], [alert], items)
    assert work.comparisons == (work.pictured,)  # one comparison: the pictures' dates and frame
    assert [i.scene_id for i in work.pictured.before] == ["b_few_clear", "b_many_cloudy"]
    assert [i.scene_id for i in work.pictured.after] == ["a_many_unmasked", "a_few_unmasked"]


@pytest.mark.parametrize("origin", [-55.0, -54.9899, 12.3])  # -54.9899: the frame starts just east of a cell edge
def test_plan_finds_every_scene_whose_tiles_reach_the_frame_across_join_cells(origin):
    """The frame's scenes are found through cells of the join (0.05 degrees) wherever the frame lies
    against their edges: a scene whose only tile overlaps the frame's western margin from the cell to the
    west, one overlapping its north-east corner, and not one a hair beyond the margin."""
    import datetime as dt

    import duckdb

    from pipelines.analysis.events import Event
    from pipelines.analysis.rules import Alert
    from pipelines.sources.base import SceneItem

    before, after, side = dt.date(2024, 1, 1), dt.date(2024, 2, 1), 0.01
    tile = shapely.box(origin, -10.0, origin + side, -10.0 + side)  # frame: the tile and one tile around it
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planet_tiles")
    con.execute("CREATE TABLE planet_tiles.tile_labels (aoi VARCHAR, scan_date DATE, scene_id VARCHAR, "
                "clear_fraction FLOAT, bbox STRUCT(xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE))")
    tiles = {"west_margin": (origin - 2 * side + 1e-6, -10.0),
             "north_east": (origin + 2 * side - 1e-6, -10 + 2 * side - 1e-6),
             "beyond": (origin - 2 * side - 1e-6, -10.0)}
    for scene_id, (west, south) in tiles.items():
        for date in (before, after):
            con.execute("INSERT INTO planet_tiles.tile_labels VALUES ('a', ?, ?, 1.0, {'xmin': ?, 'ymin': ?, "
                        "'xmax': ?, 'ymax': ?})", [date, scene_id, west, south, west + side, south + side])
    alert = Alert("x", "a", "t", before, "west_margin", after, "west_margin", None, ("agriculture",), 0.9,
                  "high", None, "active", None, after, shapely.to_wkb(tile), origin, -10.0, 1e4)
    event = Event("e", "a", after, after, 1, 1.0, (("agriculture", 1),), "high", "active", ("x",), (),
                  shapely.to_wkb(tile), origin, -10.0, before, "west_margin", "west_margin")
    items = {name: SceneItem(uri=f"/s/{name}.tif", scene_id=name) for name in tiles}
    [work] = clearings.plan(con, [event], [alert], items)
    [look] = work.comparisons
    assert sorted(i.scene_id for i in look.before) == sorted(i.scene_id for i in look.after) == ["north_east",
                                                                                                 "west_margin"]


def test_the_minimum_clearing_area_keeps_a_clearing_of_exactly_that_area():
    """--min_clearing_ha: a 20 x 20-pixel clearing (3 m pixels: 0.36 ha on the map, its geodesic area by
    pyproj's geodesic area of its corners) is kept at a cut of exactly its area and dropped a square metre
    above it."""
    changed = np.zeros((60, 60), bool)
    changed[10:30, 10:30] = True
    left, top = TRANSFORM.c + 10 * 3.0, TRANSFORM.f - 10 * 3.0
    corners = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True).transform(
        [left, left + 60, left + 60, left], [top, top, top - 60, top - 60])
    area_ha = abs(Geod(ellps="WGS84").polygon_area_perimeter(*corners)[0]) / 1e4
    assert area_ha == pytest.approx(0.36, rel=2e-3)  # the UTM scale factor near the central meridian
    [(outline, area)] = clearings.polygons(changed, CRS_UTM, TRANSFORM, min_ha=area_ha)
    assert area == pytest.approx(area_ha, rel=1e-9)
    assert clearings.polygons(changed, CRS_UTM, TRANSFORM, min_ha=area_ha + 1e-4) == []


def test_events_whose_scene_cannot_be_opened_are_counted_in_one_line_and_the_scene_tried_once(caplog, tmp_path,
                                                                                                monkeypatch):
    """Thousands of events share a few scenes: one that cannot be opened is tried once, and the events
    without clearings are counted per reason in one warning line, not one line each."""
    import datetime as dt
    import logging

    from pipelines.analysis.events import Event
    from pipelines.sources.base import SceneItem
    from pipelines.sources.reader import ReadOptions

    day, tile = dt.date(2024, 2, 1), shapely.to_wkb(shapely.box(-55.0, -10.0, -54.99, -9.99))
    gone = SceneItem(uri=str(tmp_path / "gone.tif"), scene_id="gone")
    works = [clearings.Work(Event(f"e{i}", "a", day, day, 1, 1.0, (("agriculture", 1),), "high", "active",
                                  (f"x{i}",), (), tile, -54.995, -9.995, day, "gone", "gone"),
                            ((f"x{i}", tile),), (look := clearings.Comparison(day, day, (f"x{i}",), (gone,), (gone,)),),
                            look) for i in range(5)]
    opened = []
    real_open = ReadOptions.open
    monkeypatch.setattr(ReadOptions, "open", lambda self, item: opened.append(item.uri) or real_open(self, item))
    with caplog.at_level(logging.WARNING, logger=clearings.log.name):
        assert clearings.for_events(works, ReadOptions()) == []
    assert opened == [gone.uri]
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("5 events without clearings (e0, e1, e2, ...): scene gone: ") and "gone.tif" in line


def _ha(geometry):
    """Hectares on the WGS84 ellipsoid, by pyproj's Geod over the exterior (the oracle)."""
    lon, lat = geometry.exterior.coords.xy
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / 1e4


def test_a_delineation_scores_iou_recall_area_and_false_hectares_as_worked_by_hand():
    """Near the equator, in degrees: A (2 x 2 mdeg, about 4.9 ha) is found at IoU 0.55 (its western 1.1 mdeg);
    B's clearing covers its eastern 0.5 mdeg and 1.5 mdeg beyond it: IoU 0.5 / 3.5 = 1/7, not found; C
    (0.5 x 0.5 mdeg, 0.3 ha) is under the 1 ha floor, so not counted as a place, but its area is planted;
    F lies outside every place, as does the part of B's clearing beyond B."""
    box = shapely.geometry.box
    planted = [box(0, 0, 0.002, 0.002), box(0.01, 0, 0.012, 0.002), box(0.02, 0.01, 0.0205, 0.0105)]
    found = [box(0, 0, 0.0011, 0.002), box(0.0115, 0, 0.0135, 0.002), box(0.03, 0, 0.031, 0.001)]
    result = clearings.measure(found, planted, min_ha=1.0)
    iou_a = _ha(found[0]) / _ha(planted[0])
    iou_b = _ha(box(0.0115, 0, 0.012, 0.002)) / _ha(box(0.01, 0, 0.0135, 0.002))
    assert (iou_a, iou_b) == pytest.approx((0.55, 1 / 7), abs=1e-6)
    assert result["planted"] == 2 and result["recall_iou50"] == 0.5
    assert result["mean_iou"] == round((iou_a + iou_b) / 2, 4)
    planted_ha, found_ha = sum(map(_ha, planted)), sum(map(_ha, found))
    assert result["planted_ha"] == round(planted_ha, 3) and result["cleared_ha"] == round(found_ha, 3)
    assert result["area_ratio"] == round(found_ha / planted_ha, 4)
    assert result["false_ha"] == round(_ha(found[2]) + _ha(box(0.012, 0, 0.0135, 0.002)), 3)
    assert clearings.measure([], planted[:1], 1.0)["recall_iou50"] == 0.0
    assert clearings.measure(found, [], 1.0)["area_ratio"] is None


def test_an_alerts_cleared_hectares_are_its_own_clearings_inside_its_tile():
    import dataclasses
    import datetime as dt

    from pipelines.analysis.rules import Alert

    box = shapely.geometry.box
    day = dt.date(2026, 6, 1)
    tile = box(0, 0, 0.005, 0.005)
    alert = Alert("a1", "aoi", "T1", day, "s0", day, "s1", None, ("agriculture",), 0.9, "low", None, "active", None,
                  day, tile.wkb, 0.0025, 0.0025, _ha(tile) * 1e4)
    other = dataclasses.replace(alert, alert_id="a2")

    def clearing(shape, alert_ids):
        return clearings.Clearing("c", "e1", "aoi", alert_ids, day, day, ("agriculture",), "low", _ha(shape), 0.9,
                                  NDVI, 0.1, shape.wkb, 0.0, 0.0)

    half_out = box(0.004, 0.001, 0.006, 0.002)  # half inside the tile
    inside = box(0.001, 0.001, 0.002, 0.002)
    mine, theirs = clearings.attach_alerts([alert, other], [clearing(half_out, ("a1",)), clearing(inside, ("a1",)),
                                                            clearing(box(0, 0, 0.001, 0.001), ("a3",))])
    expected = _ha(box(0.004, 0.001, 0.005, 0.002)) + _ha(inside)
    assert mine.cleared_ha == pytest.approx(expected, abs=1e-4) and theirs.cleared_ha == 0.0


#: Alerts (tile column, date before, date detected) of one event on three dates, and the clearings expected
#: (name, date before, date detected, alert tiles touched), by case: the grown tile judged clear on the second
#: date, or last on the first (cloudy on the second), or both tiles first detected on the third date, one of
#: them last judged on the first.
GROWN = {
    "after a clear look": ([(2, 0, 1), (3, 1, 2)],
                           [("side", 0, 1, (2,)), ("first", 0, 1, (2,)), ("growth", 1, 2, (2, 3))]),
    "after a cloudy date": ([(2, 0, 1), (3, 0, 2)],
                            [("side", 0, 1, (2,)), ("first", 0, 1, (2,)), ("growth", 0, 2, (2, 3))]),
    "both on one date": ([(2, 1, 2), (3, 0, 2)], [("growth", 1, 2, (2, 3)), ("first", 0, 2, (2,))]),
}


@pytest.mark.parametrize("case", GROWN)
def test_an_event_that_grew_is_delineated_on_each_pair_of_dates_its_alerts_compared(tmp_path, case):
    """Three dates, 64-px tiles: on the second a clearing (``first``, 40 x 40 px) in tile column 2 and another
    beside it (``side``, 50 x 40, reaching into the tile from the west), and one (``away``) that touches no
    alert tile; on the third ``first`` grown by 40 x 40 px into column 3. One event of two alerts. Each
    clearing is found once, between the dates of the first comparison that sees it (the later date before
    first on one date of detection, the narrower span), and what an earlier comparison found is not found
    again by a later one whose date before is older; ``away`` is in a frame but not kept."""
    import datetime as dt

    import duckdb
    import rasterio
    from rasterio.enums import ColorInterp

    from pipelines.analysis import events
    from pipelines.analysis.rules import Alert
    from pipelines.sources.base import SceneItem
    from pipelines.sources.reader import ReadOptions

    size, tile = 384, 64
    days = [dt.date(2026, 6, 1), dt.date(2026, 7, 13), dt.date(2026, 7, 27)]
    places = {"first": (150, 150, 40, 40, 1), "side": (90, 150, 50, 40, 1), "away": (70, 70, 40, 30, 1),
              "growth": (190, 150, 40, 40, 2)}  # column, row, width, height, the date it is cleared by
    ground = scene(size)
    items = {}
    for n in range(len(days)):
        image = ground * (1 + 0.02 * np.random.default_rng(n).standard_normal(ground.shape).astype(np.float32))
        for col, row, width, height, by in places.values():
            if n >= by:
                image[row:row + height, col:col + width] = FIELD
        path = tmp_path / f"d{n}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=4, dtype="uint16",
                           crs=CRS_UTM, transform=TRANSFORM, nodata=0) as dst:
            dst.write(np.moveaxis(np.clip(image, 1, 65535).astype("uint16"), -1, 0))
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
        items[f"d{n}"] = SceneItem(uri=str(path), scene_id=f"d{n}")
    to_lonlat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True).transform

    def lonlat(col, row, width, height):
        corners = (*(TRANSFORM * (col, row + height)), *(TRANSFORM * (col + width, row)))
        return ops.transform(to_lonlat, shapely.box(*corners))

    def alert(col, before, detected):
        outline = lonlat(col * tile, 2 * tile, tile, tile)
        return Alert(f"a{col}", "a", f"UTM21S-3m/{col}/2", days[before], f"d{before}", days[detected],
                     f"d{detected}", None, ("agriculture",), 0.9, "high", None, "active", None, days[2],
                     outline.wkb, outline.centroid.x, outline.centroid.y, (tile * 3.0) ** 2)

    given, expected = GROWN[case]
    found = [alert(*a) for a in given]
    [event] = events.events(found)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planet_tiles")
    con.execute("CREATE TABLE planet_tiles.tile_labels (aoi VARCHAR, scan_date DATE, scene_id VARCHAR, "
                "clear_fraction FLOAT, bbox STRUCT(xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE))")
    west, south, east, north = lonlat(0, 0, size, size).bounds
    for n, day in enumerate(days):
        con.execute("INSERT INTO planet_tiles.tile_labels VALUES ('a', ?, ?, 1.0, {'xmin': ?, 'ymin': ?, "
                    "'xmax': ?, 'ymax': ?})", [day, f"d{n}", west, south, east, north])
    [work] = clearings.plan(con, [event], found, items)
    by_span = sorted(given, key=lambda a: (a[2], -a[1]))  # by date of detection, the later date before first
    assert [(c.before_date, c.detected_date, c.alert_ids) for c in work.comparisons] == [
        (days[b], days[d], (f"a{col}",)) for col, b, d in by_span]
    # the pictures: the event's first alert's dates (the earliest detection, the smaller tile id), all its tiles
    assert work.pictured.alert_ids == event.alert_ids == ("a2", "a3")
    assert [i.scene_id for i in work.pictured.before + work.pictured.after] == [f"d{given[0][1]}", f"d{given[0][2]}"]

    cleared = clearings.delineate(work, ReadOptions(), min_clearing_ha=0.5)
    assert [(c.before_date, c.detected_date, c.alert_ids) for c in cleared] == [
        (days[b], days[d], tuple(f"a{col}" for col in cols)) for _, b, d, cols in expected]
    outlines = [shapely.from_wkb(c.geometry) for c in cleared]
    for (name, *_), got, clearing in zip(expected, outlines, cleared):
        col, row, width, height, _ = places[name]
        want = lonlat(col, row, width, height)
        assert got.symmetric_difference(want).area < 0.05 * want.area, name
        assert clearing.area_ha == pytest.approx(width * height * 9 / 1e4, rel=0.05), name
    assert shapely.union_all(outlines).area == pytest.approx(sum(o.area for o in outlines), rel=1e-3), "none twice"

    # without the third date's scene the event has no clearings, not some of them (a part of them would pass
    # for the event's cleared area)
    [lacking] = clearings.plan(con, [event], found, {k: v for k, v in items.items() if k != "d2"})
    with pytest.raises(clearings.ClearingError, match=f"^no scenes of {days[2]} over the event \\(compared "):
        clearings.delineate(lacking, ReadOptions(), min_clearing_ha=0.5)
    # delineate's outcome lines name the scene of detection of the first comparison, or of the one that failed
    from pipelines.delineate import DelineateEvents

    def outcome(of):
        [line] = [o.value for o in DelineateEvents(ReadOptions(), 0.5).process(of) if hasattr(o, "tag")]
        return line["status"], line["scene_id"]

    assert outcome(work) == ("written", f"d{by_span[0][2]}")
    (tmp_path / "d2.tif").unlink()
    assert outcome(work) == ("failed", "d2")


def test_what_an_earlier_comparison_found_is_taken_out_with_the_slivers_its_outline_leaves():
    """Changed pixels in rows 10 to 50: a block in columns 5 to 40 found earlier, its outline (simplified by a
    pixel) reaching into column 38 by a third of a pixel: the pixel it grazes goes, and column 39, a sliver
    left alone, too. And columns 50 to 100, of which 50 to 70 were found earlier, the outline grazing column
    69: the growth east of it stays, exactly."""
    changed = np.zeros((60, 110), bool)
    changed[10:50, 5:40] = True
    changed[10:50, 50:100] = True
    to_lonlat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True).transform
    earlier = [ops.transform(to_lonlat, shapely.box(*(TRANSFORM * (west, 50)), *(TRANSFORM * (east, 10))))
               for west, east in ((5, 38.3), (50, 69.2))]
    left = clearings.not_found_before(changed, earlier, CRS_UTM, TRANSFORM)
    expected = np.zeros_like(changed)
    expected[10:50, 70:100] = True
    assert np.array_equal(left, expected)
    assert clearings.not_found_before(changed, [], CRS_UTM, TRANSFORM) is changed
