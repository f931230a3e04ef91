"""Labelling rules on hand-drawn polygons whose coverage is worked out by hand.

The tile is a native 256-px tile of 3 m pixels in UTM 21S (768 m a side). Every polygon is a band of
whole pixel columns, drawn in UTM and converted to EPSG:4326 with pyproj directly, so its share of the
tile is ``columns / 256`` exactly: the expected labels follow from the documented cuts alone.
"""

import pytest
import shapely.geometry
import shapely.ops
from pyproj import Transformer
from shapely.geometry import box

from pipelines.geo.grid import Tile
from pipelines.geo.ground_truth import PolygonTruth, TruthRules

X0, Y0, PX = 600_000.0, 8_900_000.0, 3.0
TILE = Tile("t/0/0", "EPSG:32721", (PX, 0.0, X0, 0.0, -PX, Y0), 256)
TO_LONLAT = Transformer.from_crs("EPSG:32721", "EPSG:4326", always_xy=True)


def columns(first: int, count: int):
    """Pixel columns ``first .. first + count - 1`` of the tile, full height, in EPSG:4326."""
    utm = box(X0 + first * PX, Y0 - 256 * PX, X0 + (first + count) * PX, Y0)
    return shapely.ops.transform(TO_LONLAT.transform, utm)


def labels(*features):
    return PolygonTruth([(tag, columns(a, n)) for tag, a, n in features]).labels(TILE)


@pytest.mark.parametrize(("cloud_columns", "expected"), [
    (180, ["cloudy"]),  # 180/256 = 0.703 >= 0.7: cloudy and nothing else (the road beside it is hidden too)
    (179, ["partly_cloudy", "road"]),  # 0.699: partly cloudy; the road outside the cloud shows
    (13, ["partly_cloudy", "road"]),  # 0.0508 >= 0.05
    (12, ["clear", "road"]),  # 0.0469 < 0.05: clear
])
def test_cloud_cuts(cloud_columns, expected):
    assert labels(("cloudy", 0, cloud_columns), ("road", 250, 6)) == expected


@pytest.mark.parametrize(("haze_columns", "expected"), [(128, ["haze"]), (127, ["clear"])])
def test_haze_needs_half_the_tile(haze_columns, expected):
    assert labels(("haze", 0, haze_columns)) == expected  # 128/256 = 0.5 is haze, 127/256 is not


@pytest.mark.parametrize(("road_columns", "taken"), [(3, True), (2, False)])
def test_land_tags_need_one_percent(road_columns, taken):
    # 3/256 = 0.0117 >= 0.01; 2/256 = 0.0078 is too thin to tag
    assert ("road" in labels(("road", 100, road_columns))) is taken


def test_a_tag_under_a_cloud_cannot_be_seen():
    # road on columns 0-9 entirely under a cloud on columns 0-19 (0.078: partly cloudy)
    assert labels(("cloudy", 0, 20), ("road", 0, 10), ("primary", 0, 256)) == ["partly_cloudy", "primary"]
    # half of the road sticks out of the cloud: 5/256 = 0.0195 of it shows
    assert labels(("cloudy", 0, 20), ("road", 15, 10), ("primary", 0, 256)) == ["partly_cloudy", "primary", "road"]


def test_polygons_tagged_partly_cloudy_are_cloud_too():
    """Both cloud tags are cloud: a partly_cloudy polygon over 0.7 of the tile makes it cloudy, and what it
    covers cannot be seen."""
    assert labels(("partly_cloudy", 0, 180), ("road", 250, 6)) == ["cloudy"]
    assert labels(("partly_cloudy", 0, 20), ("road", 0, 10), ("primary", 0, 256)) == ["partly_cloudy", "primary"]


def test_rules_are_settable_and_unknown_tags_refused():
    assert PolygonTruth([("road", columns(0, 2))], TruthRules(min_coverage=0.005)).labels(TILE) == ["clear", "road"]
    with pytest.raises(ValueError, match="unknown tag"):
        PolygonTruth([("forest", columns(0, 2))])


def test_ground_truth_geojson_needs_a_tag_on_every_feature():
    feature = {"type": "Feature", "properties": {"tag": "water"},
               "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}
    untagged = {**feature, "properties": {"name": "river"}}
    with pytest.raises(ValueError, match="ground-truth feature 1 has no 'tag' property"):
        PolygonTruth.from_geojson({"features": [feature, untagged]})
    with pytest.raises(ValueError, match=r"unknown tag\(s\) \['lake'\]"):
        PolygonTruth.from_geojson({"features": [{**feature, "properties": {"tag": "lake"}}]})


def test_ground_truth_geojson_keeps_the_rules_given():
    """The same two-column road, from GeoJSON: tagged under a 0.5 % cut, not under the default 1 %."""
    road = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"tag": "road"}, "geometry": shapely.geometry.mapping(columns(0, 2))}]}
    assert PolygonTruth.from_geojson(road, TruthRules(min_coverage=0.005)).labels(TILE) == ["clear", "road"]
    assert PolygonTruth.from_geojson(road).labels(TILE) == ["clear"]
    assert PolygonTruth.from_geojson({"type": "FeatureCollection"}).labels(TILE) == ["clear"]  # nothing drawn


def test_every_cut_is_inclusive():
    """On a 100-px tile the cuts fall on whole pixels: 70 cloud columns are cloudy (0.7; 69 are not), 5 are
    partly cloudy (0.05; 4 are clear), and a road of one column (0.01) is tagged."""
    tile = Tile("t/0/0", "EPSG:32721", (PX, 0.0, X0, 0.0, -PX, Y0), 100)

    def on_small(*features):
        return PolygonTruth([(tag, columns(a, n)) for tag, a, n in features]).labels(tile)

    assert on_small(("cloudy", 0, 70)) == ["cloudy"]
    assert on_small(("cloudy", 0, 69)) == ["partly_cloudy"]
    assert on_small(("cloudy", 0, 5), ("primary", 0, 100)) == ["partly_cloudy", "primary"]
    assert on_small(("cloudy", 0, 4), ("primary", 0, 100)) == ["clear", "primary"]
    assert on_small(("road", 50, 1)) == ["clear", "road"]
