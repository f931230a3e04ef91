import morecantile
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from pipelines.geo import grid
from tests.conftest import RASTERS


def test_native_grid_ids_frames_and_edge_tiles():
    g = grid.NativeGrid("s", "EPSG:32721", (3.0, 0, 600000.0, 0, -3.0, 8900000.0), width=700, height=300)
    assert g.shape == (2, 3)  # edge tiles hang over the scene
    assert [g.tile(r, c).tile_id for r, c in g.tiles()][:4] == ["s/0/0", "s/0/1", "s/0/2", "s/1/0"]
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


def test_utm_tiles_have_stable_ids_and_their_cell_on_the_ground():
    g = grid.UtmGrid.for_region(box(-56.2, -10.1, -56.0, -9.9), 3.0)
    assert (g.name, g.crs) == ("UTM21S-3m", "EPSG:32721")
    place = Point(-56.1, -10.0).buffer(1e-6)
    [(col, row)] = g.tiles(place)
    tile = g.tile(col, row)
    assert tile.tile_id == f"UTM21S-3m/{col}/{row}" and tile.polygon_wgs84().contains(Point(-56.1, -10.0))
    # pixel edges on multiples of 3 m from easting 0 and from 10,000,002 m (the first multiple >= 10,000 km)
    assert tile.transform[2] % 3 == 0 and (10_000_002 - tile.transform[5]) % (3 * 256) == 0
    assert grid.UtmGrid(21, True, 3.0).tiles(place) == [(col, row)]  # same place, same id, every time
    # UTM scale factor near the central meridian is 0.9996-1.0004: the ground pixel is the cell to 0.1 %
    assert tile.ground_pixel_m() == pytest.approx(3.0, rel=1e-3)
    north = grid.UtmGrid.for_region(box(-57.9, 2.0, -57.8, 2.1), 3.0)
    assert north.name == "UTM21N-3m"
    assert north.tile(*north.tiles(Point(-57.85, 2.05).buffer(1e-6))[0]).ground_pixel_m() == pytest.approx(
        3.0, rel=1e-3
    )


def test_utm_zones_and_web_mercator_shrinking_pixel():
    assert grid.utm_zone(-56.1, -10.0) == (21, True) and grid.utm_zone(-57.0, 2.0) == (21, False)
    assert grid.utm_zone(179.9, 0.0) == (60, False) and grid.utm_zone(-180.0, 0.0) == (1, False)
    # z15's 4.777 m Web Mercator pixel is about 4.777 x cos(10 deg) = 4.70 m on the ground at 10 S (to
    # 0.5 %: Web Mercator projects a sphere, the ground is measured on the WGS84 ellipsoid)
    tile = grid.WebMercatorGrid(15).tile(*grid.WebMercatorGrid(15).tiles(Point(-56.1, -10.0).buffer(1e-6))[0])
    assert tile.ground_pixel_m() == pytest.approx(4.777 * 0.9848, rel=5e-3)


def test_utm_cell_sizes_with_decimals():
    g = grid.UtmGrid(21, True, 2.35)
    tile = g.tile(*g.tiles(Point(-56.1, -10.0).buffer(1e-6))[0])
    assert tile.tile_id.startswith("UTM21S-2.35m/") and g.tms().id == "UTM21S-2p35m"
    assert tile.ground_pixel_m() == pytest.approx(2.35, rel=2e-3)


def test_utm_zones_run_from_1_to_60_and_cells_are_positive():
    assert grid.UtmGrid(1, False, 3.0).crs == "EPSG:32601" and grid.UtmGrid(60, True, 3.0).crs == "EPSG:32760"
    for zone in (0, 61):
        with pytest.raises(ValueError, match=f"UTM zone {zone}: must be 1 to 60"):
            grid.UtmGrid(zone, True, 3.0)
    with pytest.raises(ValueError, match="cell size 0.0: must be positive"):
        grid.UtmGrid(21, True, 0.0)


def test_zoom_for_resolution_stays_within_the_tile_matrix_set():
    tms = morecantile.tms.get("WebMercatorQuad")
    assert grid.zoom_for_resolution(1e-6) == tms.maxzoom  # finer than the finest level
    assert grid.zoom_for_resolution(1e9) == tms.minzoom == 0  # coarser than the whole world in one tile
    assert grid.zoom_for_resolution(tms.matrix(tms.maxzoom).cellSize) == tms.maxzoom


@pytest.mark.parametrize("lon, lat", [(-55.0, -10.0), (-59.99, -3.0), (-54.01, -9.0), (-174.5, 5.0), (0.5, -1.0),
                                      (179.5, 10.0)])
def test_utm_zone_is_the_one_pyproj_finds(lon, lat):
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    [info] = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    assert grid.UtmGrid(*grid.utm_zone(lon, lat), 3.0).crs == f"EPSG:{info.code}"


def test_the_antimeridian_is_zone_60_and_sub_metre_cells_are_allowed():
    assert grid.utm_zone(180.0, 1.0) == (60, False)
    g = grid.UtmGrid(21, True, 0.5)  # SkySat's 50 cm
    assert g.tile(*g.tiles(Point(-56.1, -10.0).buffer(1e-7))[0]).ground_pixel_m() == pytest.approx(0.5, rel=1e-3)


def test_utm_tile_frames_and_sizes_follow_the_documented_lattice():
    """Tile (col, row) of a 3 m, 512-px grid has its top-left corner at easting col x 1536 m and northing
    10,000,002 - row x 1536 m, as a six-number GDAL-order affine."""
    g = grid.UtmGrid.for_region(box(-56.2, -10.1, -56.0, -9.9), 3.0, tile_size=512)
    assert g.tile_size == 512
    tile = g.tile(250, 700)
    assert tile.transform == (3.0, 0.0, 250 * 1536.0, 0.0, -3.0, 10_000_002.0 - 700 * 1536.0) and tile.size == 512


def test_utm_tiles_of_a_diagonal_region_are_exactly_those_it_touches():
    """A thin diagonal strip over about 6 x 6 tiles touches the diagonal ones and their neighbours, not the
    corners of its bounding box. Expected: every tile of the documented lattice (768 m squares from easting
    0 and northing 10,000,002) whose square intersects the strip, reprojected with pyproj directly."""
    import shapely.ops
    from pyproj import Transformer
    from shapely.geometry import LineString

    g = grid.UtmGrid(21, True, 3.0)
    strip = LineString([(-56.10, -10.00), (-56.06, -10.04)]).buffer(0.0005)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True)
    local = shapely.ops.transform(to_utm.transform, strip)
    minx, miny, maxx, maxy = local.bounds
    expected = sorted(
        (
            (c, r)
            for r in range(int((10_000_002 - maxy) // 768) - 1, int((10_000_002 - miny) // 768) + 2)
            for c in range(int(minx // 768) - 1, int(maxx // 768) + 2)
            if local.intersects(box(c * 768, 10_000_002 - (r + 1) * 768, (c + 1) * 768, 10_000_002 - r * 768))
        ),
        key=lambda cr: (cr[1], cr[0]),
    )
    found = g.tiles(strip)
    assert found == expected
    columns, rows = {c for c, _ in found}, {r for _, r in found}
    assert len(columns) >= 6 and len(rows) >= 6 and len(found) < len(columns) * len(rows) / 2


def test_zoom_for_resolution_at_a_latitude():
    """At 60 degrees a Web Mercator pixel covers half its equatorial size on the ground: 3 m is z15 there
    (4.78 x 0.5 = 2.39 m), against z16 on the equator."""
    assert grid.zoom_for_resolution(3.0, latitude=-60.0) == 15
    assert grid.zoom_for_resolution(3.0, latitude=0.0) == grid.zoom_for_resolution(3.0) == 16


def test_a_tiles_ground_pixel_is_its_central_pixels_on_the_ellipsoid():
    """A z3 Web Mercator tile spans 0 to 41 degrees south, so where the pixel is measured matters: the
    central pixel's corners, from morecantile's tile bounds and pyproj, measured with pyproj's Geod."""
    from pyproj import Geod, Transformer

    tms = morecantile.tms.get("WebMercatorQuad")
    t = tms.tile(-56.0, -10.0, 3)
    tile = grid.WebMercatorGrid(3).tile(t.x, t.y)
    b = tms.xy_bounds(t)
    px = (b.right - b.left) / 256
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (lon0, lat0), (lon1, lat1), (lon2, lat2) = (to_lonlat.transform(b.left + x * px, b.top - y * px)
                                                for x, y in ((128, 128), (129, 128), (128, 129)))
    geod = Geod(ellps="WGS84")
    expected = (geod.inv(lon0, lat0, lon1, lat1)[2] + geod.inv(lon0, lat0, lon2, lat2)[2]) / 2
    assert tile.ground_pixel_m() == pytest.approx(expected, rel=1e-9)


def test_tile_frames_are_six_number_affines_and_outlines_are_exact():
    """Every grid's tiles carry a GDAL-order six-number transform. A UTM tile's outline has its corners where
    pyproj puts the corners of its 768 m square; a Web Mercator tile's is morecantile's lon/lat rectangle,
    five corners and no more."""
    from pyproj import Transformer

    native = grid.NativeGrid("s", "EPSG:32721", (3.0, 0, 600000.0, 0, -3.0, 8900000.0), width=700, height=300)
    assert native.tile(1, 2).transform == (3.0, 0.0, 600000.0 + 512 * 3, 0.0, -3.0, 8900000.0 - 256 * 3)
    mercator = grid.WebMercatorGrid(15)
    tms = morecantile.tms.get("WebMercatorQuad")
    t = tms.tile(-56.1, -10.0, 15)
    xy = tms.xy_bounds(t)
    assert mercator.tile(t.x, t.y).transform == pytest.approx(
        ((xy.right - xy.left) / 256, 0.0, xy.left, 0.0, -(xy.top - xy.bottom) / 256, xy.top), rel=1e-12)
    assert len(mercator.tile(t.x, t.y).transform) == 6
    outline = mercator.tile(t.x, t.y).polygon_wgs84()
    assert outline.bounds == pytest.approx(tuple(tms.bounds(t)), abs=1e-9) and len(outline.exterior.coords) == 5
    utm = grid.UtmGrid(21, True, 3.0)
    tile = utm.tile(781, 1440)
    to_lonlat = Transformer.from_crs("EPSG:32721", "EPSG:4326", always_xy=True)
    x0, y0 = 781 * 768.0, 10_000_002.0 - 1440 * 768.0
    corners = [to_lonlat.transform(x, y) for x, y in ((x0, y0), (x0 + 768, y0), (x0 + 768, y0 - 768), (x0, y0 - 768))]
    for lon, lat in corners:
        assert min(Point(lon, lat).distance(Point(c)) for c in tile.polygon_wgs84().exterior.coords) < 1e-9


def test_native_tiles_of_a_region_larger_than_the_scene_stop_at_its_edges():
    g = grid.NativeGrid("s", "EPSG:32721", (3.0, 0, 600000.0, 0, -3.0, 8900000.0), width=700, height=300)
    everything = grid.reproject(box(590000, 8890000, 610000, 8910000), "EPSG:32721", grid.WGS84)
    assert g.tiles(everything) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_web_mercator_tiles_come_row_by_row():
    assert grid.WebMercatorGrid(1).tiles(box(-180, -90, 180, 90)) == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_long_edges_bend_when_reprojected_and_scene_footprints_sit_on_their_corners():
    """A parallel 6 degrees long is curved in UTM: the reprojected outline (21 points per edge) passes within
    10 m of where pyproj puts the parallel's midpoint; a straight chord between the corners misses it by
    kilometres.
    A real scene's footprint has its corners where pyproj puts the raster's corner pixels' outer edges."""
    import rasterio
    from pyproj import Transformer

    strip = grid.reproject(box(-60.0, -10.0, -54.0, -9.0), grid.WGS84, "EPSG:32721")
    mid = Point(Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True).transform(-57.0, -9.0))
    assert strip.exterior.distance(mid) < 10.0
    path = RASTERS / "planetscope" / "color_balance_source.tif"
    with rasterio.open(path) as src:
        footprint = grid.scene_footprint(src.crs, src.transform, src.width, src.height)
        to_lonlat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True)
        corners = [to_lonlat.transform(*(src.transform * xy)) for xy in
                   ((0, 0), (src.width, 0), (src.width, src.height), (0, src.height))]
    for lon, lat in corners:
        assert min(Point(lon, lat).distance(Point(c)) for c in footprint.exterior.coords) < 1e-9


@pytest.mark.parametrize(("crs", "transform", "size", "most_points"), [
    ("EPSG:32721", (3, 0, 600000, 0, -3, 8900000), 256, 5),  # a scan's 3-m tile: its corners
    ("EPSG:32721", (3, 0, 166000, 0, -3, 9990000), 256, 5),  # at the zone's western edge, by the equator
    ("EPSG:32721", (30, 0, 166000, 0, -30, 9990000), 4096, 85),  # a 123-km tile: its edges bend by metres
    ("EPSG:32633", (30, 0, 700000, 0, -30, 7000000), 4096, 85),  # north and east: positive longitudes, latitudes
])
def test_tile_outlines_keep_the_points_their_pixels_need(crs, transform, size, most_points):
    """A tile's outline strays from its true edges (lines in its own CRS, traced by pyproj at 200 points an
    edge, measured in metres in that CRS) by at most a hundredth of a pixel more than the densified
    reprojection it is simplified from, with no more points than it needs; for a scan's 256-px tiles, by
    under a fiftieth of a pixel in all. (A 123-km tile at 62 N is 1.3 m off already when densified.)"""
    from pyproj import Transformer
    from shapely.geometry import box

    tile = grid.Tile("t", crs, transform, size)
    outline = tile.polygon_wgs84()
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    left, top = transform[2], transform[5]
    right, bottom = left + transform[0] * size, top + transform[4] * size
    s, width, height = np.linspace(0, 1, 200), right - left, bottom - top
    xs = np.concatenate([left + width * s, np.full(200, right), right - width * s, np.full(200, left)])
    ys = np.concatenate([np.full(200, top), top + height * s, np.full(200, bottom), bottom - height * s])
    true_edge = shapely.Polygon(np.column_stack(to_lonlat.transform(xs, ys)))
    in_metres = lambda g: shapely.transform(g, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))  # noqa: E731

    def error(polygon):  # its straight lon/lat edges, densified in lon/lat, then taken to metres: as drawn
        drawn = shapely.segmentize(polygon, max(polygon.bounds[2] - polygon.bounds[0], 1e-9) / 400)
        return shapely.hausdorff_distance(in_metres(drawn), in_metres(true_edge))

    densified = grid.reproject(box(left, bottom, right, top), crs, grid.WGS84)
    assert error(outline) <= error(densified) + 0.01 * transform[0]
    if size == 256:
        assert error(outline) < 0.02 * transform[0]
    assert 5 <= len(outline.exterior.coords) <= most_points and outline.is_valid


@pytest.mark.parametrize(("crs", "transform"), [
    ("EPSG:32721", (3, 0, 600000, 0, -3, 8900000)), ("EPSG:32633", (30, 0, 700000, 0, -30, 7000000)),
    ("EPSG:3857", (4.77, 0, -6_000_000, 0, -4.77, -1_000_000)), ("EPSG:4326", (0.001, 0, -60, 0, -0.001, -3)),
])
def test_tile_bounds_are_those_of_its_densified_outline(crs, transform):
    """A chip's bounds (PROJ's transform_bounds, 21 points an edge) are those of the tile's outline
    reprojected with densified edges by shapely and pyproj, in any CRS, its own lon/lat included."""
    tile = grid.Tile("t", crs, transform, 256)
    left, top = transform[2], transform[5]
    right, bottom = left + transform[0] * 256, top + transform[4] * 256
    expected = grid.reproject(box(left, bottom, right, top), crs, grid.WGS84).bounds
    assert tile.bounds_wgs84() == pytest.approx(expected, abs=1e-12)
    assert all(isinstance(v, float) for v in tile.bounds_wgs84())
