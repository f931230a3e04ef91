import json

import morecantile
import pytest
from shapely.geometry import Point, box

from pipelines import grid


def test_native_grid_ids_windows_and_edge_tiles():
    g = grid.NativeGrid("s", "EPSG:32721", (3.0, 0, 600000.0, 0, -3.0, 8900000.0), width=700, height=300)
    assert g.shape == (2, 3)  # edge tiles hang over the scene
    assert [g.tile(r, c).tile_id for r, c in g.tiles()][:4] == ["s/0/0", "s/0/1", "s/0/2", "s/1/0"]
    assert g.window(1, 2) == (512, 256, 256, 256)
    assert g.tile(1, 2).transform[2] == 600000.0 + 512 * 3 and g.tile(1, 2).transform[5] == 8900000.0 - 256 * 3


def test_native_grid_region_in_any_crs():
    g = grid.NativeGrid("s", "EPSG:32721", (3.0, 0, 600000.0, 0, -3.0, 8900000.0), width=1024, height=1024)
    middle = g.tile(1, 2).polygon_wgs84().centroid
    assert g.tiles(middle.buffer(1e-5)) == [(1, 2)]
    local_box = box(600000 + 10, 8900000 - 600, 600000 + 900, 8900000 - 10)  # in UTM metres
    assert g.tiles(grid.reproject(local_box, "EPSG:32721", grid.WGS84)) == [(0, 0), (0, 1)]


def test_web_mercator_ids_are_stable_and_match_morecantile():
    lon, lat = -54.05, -9.95
    g = grid.WebMercatorGrid(15)
    expected = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 15)
    found = g.tiles(Point(lon, lat).buffer(1e-6))
    assert found == [(expected.x, expected.y)]
    tile = g.tile(*found[0])
    assert tile.tile_id == f"WebMercatorQuad/15/{expected.x}/{expected.y}"
    assert tile.polygon_wgs84().contains(Point(lon, lat))
    assert grid.WebMercatorGrid(15).tile(*found[0]) == tile  # same place, same id, every time


def test_zoom_for_resolution():
    assert grid.zoom_for_resolution(4.8) == 15
    assert grid.zoom_for_resolution(3.0) == 16
    assert grid.zoom_for_resolution(300.0) == 9


def test_parse_region_bbox_and_geojson_with_crs(tmp_path):
    assert grid.parse_region("-55,-10,-54,-9").bounds == (-55, -10, -54, -9)
    with pytest.raises(ValueError, match="west<east"):
        grid.parse_region("-54,-10,-55,-9")
    utm = box(600000, 8890000, 610000, 8900000)
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "crs": {"type": "name", "properties": {"name": "EPSG:32721"}},
                                "features": [{"type": "Feature", "properties": {},
                                              "geometry": utm.__geo_interface__}]}))
    region = grid.parse_region(str(path))
    assert region.bounds[0] == pytest.approx(-56.09, abs=0.01) and region.bounds[3] == pytest.approx(-9.95, abs=0.01)
    with pytest.raises(ValueError, match="neither"):
        grid.parse_region(str(tmp_path / "missing.geojson"))
