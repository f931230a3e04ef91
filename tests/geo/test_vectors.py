"""Vector inputs in the formats GIS users keep them in, in any CRS: AOIs, zones, known change places."""

import json

import numpy as np
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer
from shapely import ops
from shapely.geometry import box

from pipelines.analysis import events
from pipelines.geo import aoi, vectors
from planet_core.errors import UserError

UTM = box(600000, 8890000, 610000, 8900000)  # UTM 21S: 56.09 W, 9.95 to 10.04 S


def write(path, geometries, names, crs="EPSG:32721", driver=None, layer=None, append=False):
    pyogrio.raw.write(str(path), np.array([g.wkb for g in geometries], dtype=object),
                      field_data=[np.array(names, dtype=object)], fields=["name"], crs=crs, driver=driver,
                      geometry_type="Polygon", layer=layer, append=append)


def expected_lonlat(geometry):
    """pyproj's transform of the corners: the reference the reading must match."""
    to_lonlat = Transformer.from_crs("EPSG:32721", "EPSG:4326", always_xy=True)
    xs, ys = to_lonlat.transform(*np.asarray(geometry.exterior.coords).T)
    return min(xs), min(ys), max(xs), max(ys)


@pytest.mark.parametrize("name, driver", [("aoi.gpkg", "GPKG"), ("aoi.shp", "ESRI Shapefile"),
                                          ("aoi.fgb", "FlatGeobuf"), ("aoi.geojson", "GeoJSON")])
def test_an_aoi_in_utm_in_every_common_format_is_read_in_lon_lat(tmp_path, name, driver):
    path = tmp_path / name
    write(path, [UTM], ["block"], driver=driver)
    region = aoi.parse_region(str(path))
    assert region.bounds == pytest.approx(expected_lonlat(UTM), abs=1e-6)
    loaded = aoi.load(str(path))
    assert loaded.name == "aoi" and loaded.geometry.equals(region)


def test_layers_of_a_geopackage_are_named_or_asked_for(tmp_path):
    path = tmp_path / "places.gpkg"
    write(path, [UTM], ["a"], layer="reserves")
    write(path, [UTM.buffer(-1000)], ["b"], layer="farms", append=True)
    with pytest.raises(UserError, match=r"it has 2 layers \(reserves, farms\).*places.gpkg\|layername=reserves"):
        aoi.parse_region(str(path))
    inner = aoi.parse_region(f"{path}|layername=farms")
    assert inner.area < aoi.parse_region(f"{path}|layername=reserves").area
    assert aoi.load(f"{path}|layername=farms").name == "places"
    with pytest.raises(UserError, match="no layer 'roads'; its layers: reserves, farms"):
        aoi.parse_region(f"{path}|layername=roads")


def test_unreadable_and_missing_files_are_named(tmp_path):
    junk = tmp_path / "aoi.gpkg"
    junk.write_bytes(b"\xa0 not a geopackage")
    with pytest.raises(UserError, match="--aoi .*aoi.gpkg: not a vector file GDAL can read"):
        aoi.parse_region(str(junk))
    with pytest.raises(UserError, match="--zones .*missing.shp: no such file"):
        events.read_zones(str(tmp_path / "missing.shp"))


def test_coordinates_that_are_not_lon_lat_without_a_crs_are_refused(tmp_path):
    path = tmp_path / "nocrs.geojson"
    write(path, [UTM], ["x"], crs=None, driver="GeoJSON")
    with pytest.raises(UserError, match="its coordinates are not longitudes and latitudes there"):
        vectors.read(str(path), "--zones")


def test_zones_in_utm_with_a_crs_member_give_the_same_hectares_as_in_lon_lat(tmp_path):
    """The issue's case: a zone in a UTM GeoJSON with a ``crs`` member was silently ignored."""
    utm_file = tmp_path / "utm.geojson"
    utm_file.write_text(json.dumps({"type": "FeatureCollection",
                                    "crs": {"type": "name", "properties": {"name": "EPSG:32721"}},
                                    "features": [{"type": "Feature", "properties": {"name": "reserve"},
                                                  "geometry": UTM.__geo_interface__}]}))
    lonlat = ops.transform(Transformer.from_crs("EPSG:32721", "EPSG:4326", always_xy=True).transform,
                                   shapely.segmentize(UTM, 100))
    plain_file = tmp_path / "lonlat.geojson"
    plain_file.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "reserve"}, "geometry": lonlat.__geo_interface__}]}))
    (utm_zone,), (plain_zone,) = events.read_zones(str(utm_file)), events.read_zones(str(plain_file))
    assert utm_zone.name == plain_zone.name == "reserve"
    # 10 km x 10 km of UTM grid: 10,000 ha over the square of the scale factor there (about 0.99962)
    assert events.geodesic_ha(utm_zone.geometry) == pytest.approx(events.geodesic_ha(plain_zone.geometry), rel=1e-4)
    assert events.geodesic_ha(utm_zone.geometry) == pytest.approx(10_000 / 0.99962 ** 2, rel=2e-3)
