import json

import pytest
from shapely.geometry import box

from pipelines.geo import aoi


def test_bounding_box_and_geojson_with_a_named_crs(tmp_path):
    assert aoi.parse_region("-55,-10,-54,-9").bounds == (-55, -10, -54, -9)
    with pytest.raises(ValueError, match="west<east"):
        aoi.parse_region("-54,-10,-55,-9")
    utm = box(600000, 8890000, 610000, 8900000)
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "crs": {"type": "name", "properties": {"name": "EPSG:32721"}},
                                "features": [{"type": "Feature", "properties": {},
                                              "geometry": utm.__geo_interface__}]}))
    region = aoi.parse_region(str(path))
    # UTM 21S easting 600 km, northing 8,890-8,900 km: 56.09 W, 9.95-10.04 S (worked out with the UTM formulas)
    assert region.bounds[0] == pytest.approx(-56.09, abs=0.01) and region.bounds[3] == pytest.approx(-9.95, abs=0.01)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid GeoJSON"),
    (json.dumps({"type": "FeatureCollection", "features": []}), "no geometry"),
    (json.dumps({"type": "Point", "coordinates": [0, 0]}), "expected a FeatureCollection"),
])
def test_bad_geojson_names_the_file(tmp_path, text, message):
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        aoi.parse_region(str(path))
    assert "bad.geojson" in str(caught.value)
    with pytest.raises(ValueError, match="neither"):
        aoi.parse_region(str(tmp_path / "missing.geojson"))


def test_names_become_path_parts(tmp_path):
    path = tmp_path / "xingu-headwaters.geojson"
    path.write_text(json.dumps(box(-55, -10, -54, -9).__geo_interface__))
    assert aoi.load(str(path)).name == "xingu-headwaters"
    assert aoi.load("-55,-10,-54,-9", "x_1").name == "x_1"
    with pytest.raises(ValueError, match="--aoi_name is required"):
        aoi.load("-55,-10,-54,-9")
    for bad in ("a/b", "scan_date=x", "", "with space"):
        with pytest.raises(ValueError, match="--aoi_name"):
            aoi.load("-55,-10,-54,-9", bad)


def test_regions_file(tmp_path):
    path = tmp_path / "regions.yaml"
    path.write_text("regions:\n  west:\n    aoi: " + json.dumps(box(-55, -10, -54, -9).__geo_interface__) + "\n")
    [west] = aoi.from_regions_file(str(path))
    assert west.name == "west" and west.geometry.bounds == (-55, -10, -54, -9)
    path.write_text("regions: {}\n")
    with pytest.raises(ValueError, match="no regions"):
        aoi.from_regions_file(str(path))


def test_every_feature_of_a_collection_is_the_aoi(tmp_path):
    """Two separate polygons (two reserves watched as one AOI): the region is both, not the first."""
    west, east = box(-56, -10, -55.5, -9.5), box(-55, -10, -54.5, -9.8)
    path = tmp_path / "two.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g.__geo_interface__} for g in (west, east)]}))
    region = aoi.parse_region(str(path))
    assert region.bounds == (-56, -10, -54.5, -9.5)
    assert region.area == pytest.approx(west.area + east.area)
    assert region.covers(west) and region.covers(east)
