import json

import numpy as np
import pyogrio.raw
import pytest
from shapely.geometry import Point, box

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


@pytest.mark.parametrize("text", ["-55,-10,-55,-9", "-55,-9,-54,-9"])
def test_a_bounding_box_without_width_or_height_is_refused(text):
    with pytest.raises(ValueError, match="west<east, south<north"):
        aoi.parse_region(text)


def test_an_aoi_without_area_is_refused(tmp_path):
    """A polygon whose corners lie on one line (a survey line saved as a polygon) covers nothing."""
    path = tmp_path / "line.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [[[-55, -10], [-54, -9], [-53, -8], [-55, -10]]]}))
    with pytest.raises(ValueError, match="has no area"):
        aoi.parse_region(str(path))


def _gpkg(path, geometries, kind, **layer):
    """A GeoPackage of ``geometries`` (EPSG:4326) of geometry type ``kind``."""
    pyogrio.raw.write(str(path), np.array([g.wkb for g in geometries], dtype=object),
                      field_data=[np.array(["x"] * len(geometries), dtype=object)], fields=["name"],
                      crs="EPSG:4326", driver="GPKG", geometry_type=kind, **layer)


def test_points_in_a_vector_file_are_not_an_aoi(tmp_path):
    """A GeoPackage of points (say, villages) holds no polygon to scan; beside a polygon they are left out."""
    _gpkg(tmp_path / "villages.gpkg", [Point(-55, -10), Point(-54.5, -9.5)], "Point")
    with pytest.raises(ValueError, match="villages.gpkg: no polygon in it"):
        aoi.parse_region(str(tmp_path / "villages.gpkg"))
    _gpkg(tmp_path / "mixed.gpkg", [Point(-50, -5), box(-55, -10, -54, -9)], "Unknown")
    assert aoi.parse_region(str(tmp_path / "mixed.gpkg")).bounds == (-55, -10, -54, -9)


@pytest.mark.parametrize("bad", ["..", ".hidden", "-x", "_x"])
def test_a_name_must_start_with_a_letter_or_digit(bad):
    """An AOI name is a path part of the scans layout: ``..`` would climb out of it."""
    with pytest.raises(ValueError, match="--aoi_name"):
        aoi.check_name(bad)
    assert aoi.check_name("x" + bad) == "x" + bad


def test_a_layer_of_a_file_is_named_after_the_file(tmp_path):
    """``areas.gpkg|layername=v1.2``: the AOI is named ``areas``, whatever the layer is called."""
    path = tmp_path / "areas.gpkg"
    for layer in ("v1.2", "other"):
        _gpkg(path, [box(-55, -10, -54, -9)], "Polygon", layer=layer, append=layer == "other")
    loaded = aoi.load(f"{path}|layername=v1.2")
    assert loaded.name == "areas" and loaded.geometry.bounds == (-55, -10, -54, -9)
