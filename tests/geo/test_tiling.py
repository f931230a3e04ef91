import numpy as np
import pytest

from pipelines.geo.tiling import TileSpec
from pipelines.sources.base import SceneItem
from pipelines.sources.reader import ReadOptions
from tests.conftest import RASTERS


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tile_size": 0}, "--tile_size 0"),
    ({"min_valid_fraction": 1.5}, "--min_valid_fraction"),
    ({"tiles_per_task": 0}, "--tiles_per_task"),
    ({"read_threads": 0}, "--read_threads 0"),
    ({"grid": "WebMercatorQuad"}, "needs --zoom"),
    ({"grid": "WebMercatorQuad", "zoom": 30}, "--zoom 30"),
    ({"grid": "WebMercatorQuad", "zoom": 15, "tile_size": 128}, "WebMercatorQuad tiles are 256 px"),
    ({"grid": "hexagons"}, "--grid"),
])
def test_bad_specs_are_refused_naming_the_flag(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TileSpec(**kwargs)


WMQ, UTM = {"grid": "WebMercatorQuad"}, {"grid": "UTM", "cell_size": 3.0}


@pytest.mark.parametrize(("flag", "kwargs", "accepted"), [
    *[("min_valid_fraction", {"min_valid_fraction": v}, ok) for v, ok in ((-0.01, 0), (0.0, 1), (1.0, 1), (1.01, 0))],
    *[("skip_cloudier_than", {"skip_cloudier_than": v}, ok) for v, ok in ((-0.01, 0), (0.0, 1), (1.0, 1), (1.01, 0))],
    *[("zoom", {**WMQ, "zoom": z}, ok) for z, ok in ((-1, 0), (0, 1), (24, 1), (25, 0))],
    *[("utm_zone", {**UTM, "utm_zone": z}, ok) for z, ok in (("0S", 0), ("1S", 1), ("60N", 1), ("61N", 0), ("21", 0))],
    *[("cell_size", {**UTM, "cell_size": c}, ok) for c, ok in ((0.0, 0), (-3.0, 0), (0.5, 1))],
    *[("tiles_per_task", {"tiles_per_task": n}, ok) for n, ok in ((0, 0), (1, 1))],
    *[("read_threads", {"tiles_per_task": 8, "read_threads": n}, ok) for n, ok in ((0, 0), (1, 1), (8, 1), (9, 0))],
])
def test_each_bound_of_a_spec_is_inclusive_where_the_flags_say(flag, kwargs, accepted):
    """Every number a user sets, at its bounds and just past them: fractions 0 to 1, zoom levels 0 to 24,
    UTM zones 1 to 60 with a hemisphere, positive sizes and counts."""
    if accepted:
        TileSpec(**kwargs)
    else:
        with pytest.raises(ValueError, match=f"--{flag}"):
            TileSpec(**kwargs)


def test_read_threads_default_to_two_and_never_to_more_than_a_task_has_tiles():
    """Threads past a task's tiles would never read (each takes a tile): given, they are refused (above);
    by default there are two, or one for tasks of one tile, which the default must not refuse."""
    assert TileSpec().read_threads == 2
    assert TileSpec(tiles_per_task=1).read_threads == 1
    with pytest.raises(ValueError, match=r"--read_threads 65: a task reads --tiles_per_task 64 tiles.*at most 64"):
        TileSpec(read_threads=65)


def test_native_and_web_mercator_tiles_of_a_real_scene():
    source = SceneItem(str(RASTERS / "RGB.byte.tif"), "rgb")  # 791 x 718 px, 300 m, UTM 18N
    native = TileSpec(tile_size=128)
    with ReadOptions().open(source) as reader:
        tiles = native.tiles(reader.grid)
        assert len(tiles) == 7 * 6 and tiles[0].tile_id == "rgb/0/0"  # ceil(791/128) x ceil(718/128)
        centre = tiles[8].polygon_wgs84().centroid.buffer(1e-4)
        assert [t.tile_id for t in native.tiles(reader.grid, centre)] == [tiles[8].tile_id]
    mercator = TileSpec(grid="WebMercatorQuad", zoom=9)
    with ReadOptions().open(source) as reader:
        ids = [t.tile_id for t in mercator.tiles(reader.grid)]
    assert ids and all(i.startswith("WebMercatorQuad/9/") for i in ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": "UTM"}, "needs --cell_size"),
    ({"grid": "UTM", "cell_size": 3.0, "zoom": 15}, "--zoom applies to --grid WebMercatorQuad"),
    ({"grid": "WebMercatorQuad", "zoom": 15, "cell_size": 3.0}, "--cell_size and --utm_zone apply to --grid UTM"),
    ({"grid": "UTM", "cell_size": 3.0, "utm_zone": "21X"}, "--utm_zone '21X': write the zone number and N or S"),
    ({"grid": "UTM", "cell_size": 3.0, "utm_zone": "61S"}, "--utm_zone '61S': UTM zones are numbered 1 to 60"),
])
def test_grid_flags_that_do_not_apply_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TileSpec(**kwargs)


def test_utm_tiles_of_a_real_scene_take_the_aoi_zone():
    from shapely.geometry import box

    source = SceneItem(str(RASTERS / "RGB.byte.tif"), "rgb")  # UTM 18N, 300 m
    spec = TileSpec(grid="UTM", cell_size=300.0, tile_size=64)
    with ReadOptions().open(source) as reader:
        tiles = spec.tiles(reader.grid)
        assert tiles and all(t.tile_id.startswith("UTM18N-300m/") for t in tiles)
        # an AOI centred in zone 17 puts the same scene on zone 17's grid
        west = spec.tiles(reader.grid, box(-84.0, 20.0, -77.0, 30.0))
        assert west and all(t.tile_id.startswith("UTM17N-300m/") for t in west)


def basin(vertices: int = 20_000):
    """A detailed, wiggly polygon of basin size (about 2,800 km across) whose edge cuts a test scene."""
    import numpy as np
    from shapely.geometry import Polygon

    angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = 12.7 + 0.3 * np.sin(angle * 377)  # degrees; a ragged border like a real basin outline
    return Polygon(np.column_stack([-62.0 + radius * np.cos(angle), -4.0 + radius * np.sin(angle)]))


def test_a_basin_sized_aoi_gives_exactly_the_tiles_it_touches(tmp_path):
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from pipelines.geo.grid import scene_footprint

    region = basin()
    path = str(tmp_path / "edge.tif")
    # a 3 m scene across the polygon's ragged eastern edge (49.3 W, 4 S; UTM 22S)
    with rasterio.open(path, "w", driver="GTiff", width=2048, height=2048, count=3, dtype="uint8",
                       crs="EPSG:32722", transform=from_origin(685_000, 9_560_700, 3, 3), photometric="RGB") as dst:
        dst.write(np.ones((3, 2048, 2048), np.uint8))
    spec = TileSpec(grid="UTM", cell_size=3.0)
    with ReadOptions().open(SceneItem(path, "edge")) as reader:
        found = {t.tile_id for t in spec.tiles(reader.grid, region)}
        everything = spec.tiles(reader.grid)
        footprint = scene_footprint(reader.crs, reader.transform, 2048, 2048)
    assert 0 < len(found) < len(everything)
    # the AOI's zone (its centre, 62 W: zone 20) cuts the scene, whatever zone the scene is in
    assert all(i.startswith("UTM20S-3m/") for i in found)
    matrix = spec.matrix(region)
    candidates = (matrix.tile(*cr) for cr in matrix.tiles(box(*footprint.bounds)))
    brute = {t.tile_id for t in candidates
             if t.polygon_wgs84().intersects(region) and t.polygon_wgs84().intersects(footprint)}
    assert found == brute
