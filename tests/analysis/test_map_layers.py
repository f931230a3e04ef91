"""The report map's tile layers against the tiles' true outlines: each pixel shows the tile that holds its
centre (shapely on the grid's own polygons, reprojected by pyproj), wherever the grid is turned against
Web Mercator."""

import datetime as dt

import numpy as np
import pytest
import shapely

from pipelines.analysis import events, map_layers
from pipelines.geo.grid import NativeGrid, UtmGrid, WebMercatorGrid
from planet_core.labels import LABELS
from tests import tables

DATE = dt.date(2026, 6, 1)
#: Label sets that give each map state (tile_states.sql), cloud-free ones judged (no mask: clear_fraction null).
STATE_LABELS = {"primary": ["clear", "primary"], "water": ["clear", "water"], "cloudy": ["cloudy"],
                "disturbed": ["clear", "agriculture"], "other": ["haze"]}


def _rows(tiles, rng):
    """One scan row per ``(tile id, outline)``, each with a random state; ``{tile id: state}``."""
    rows, states = [], {}
    for tile_id, outline in tiles:
        state = rng.choice(list(STATE_LABELS))
        states[tile_id] = state
        labels = STATE_LABELS[state]
        rows.append({"tile_id": tile_id, "scene_id": "s", "acquired": None, "valid_fraction": 1.0,
                     "clear_fraction": None, "labels": labels, **{f"p_{n}": 0.9 if n in labels else 0.05
                                                                   for n in LABELS},
                     "geometry": outline.wkb, "lon": outline.centroid.x, "lat": outline.centroid.y,
                     "area_m2": events.geodesic_ha(outline) * 1e4})
    return rows, states


def _drawn(tmp_path, tiles, seed=0):
    rows, states = _rows(tiles, np.random.default_rng(seed))
    scans = tables.write_scans(tmp_path / "scans", {("a", DATE): rows})
    con = tables.connect(scans, materialize=True)
    [(name, m)] = map_layers.build(con, {"min_clear_fraction": 0.8}).items()
    return m, states


def _oracle(m, tiles, states, drawn):
    """The code each pixel should show: that of the tile whose true outline holds the pixel's centre; and,
    where ``drawn`` shows another, how far (in tile sides) that centre lies from the nearest tile edge."""
    lon, lat = m.pixel_centres()
    points = shapely.points(lon.ravel(), lat.ravel())
    outlines = [outline for _, outline in tiles]
    tree = shapely.STRtree(outlines)
    expected = np.zeros(points.shape, np.uint8)
    pixel, tile = tree.query(points, predicate="within")
    expected[pixel] = [map_layers.CODES[states[tiles[t][0]]] for t in tile]
    margin = np.full(points.shape, np.inf)
    wrong = np.flatnonzero(drawn.ravel() != expected)
    if len(wrong):
        edges = shapely.union_all([o.boundary for o in outlines])
        margin[wrong] = shapely.distance(points[wrong], edges) / np.sqrt(np.median([o.area for o in outlines]))
    return expected.reshape(m.height, m.width), margin.reshape(m.height, m.width)


@pytest.mark.parametrize("grid", ["utm", "native", "mercator"])
def test_tiles_are_drawn_where_their_outlines_are(tmp_path, grid):
    """A UTM grid 2.9 degrees west of its zone's central meridian at 30 S is turned 1.5 degrees against
    Web Mercator: placed by their centres on a Web Mercator lattice, tiles 12 columns from the middle were
    drawn a sixth of a tile off their outlines. Each pixel must show the tile that holds its centre."""
    if grid == "utm":
        g = UtmGrid(21, True, 30.0, 32)
        c0, r0 = (np.array(g.tms().tile(-59.9, -30.0, 0)[:2]))
        tiles = [(t.tile_id, t.polygon_wgs84()) for t in (g.tile(c0 + c, r0 + r) for r in range(14) for c in range(25))]
    elif grid == "native":  # a scene in the next zone's CRS: its grid is fitted, turned further
        scene = NativeGrid("scene1", "EPSG:32722", (30.0, 0.0, 200_000.0, 0.0, -30.0, 6_700_000.0), 800, 448, 32)
        tiles = [(t.tile_id, t.polygon_wgs84()) for t in (scene.tile(r, c) for r, c in scene.tiles())]
    else:
        g = WebMercatorGrid(14)
        x0, y0 = g.tms().tile(-59.9, -30.0, 14)[:2]
        tiles = [(f"WebMercatorQuad/14/{x0 + c}/{y0 + r}", g.polygon_wgs84(x0 + c, y0 + r))
                 for r in range(9) for c in range(11)]
    m, states = _drawn(tmp_path, tiles)
    drawn = m.rasters[DATE]
    expected, margin = _oracle(m, tiles, states, drawn)
    assert m.k == 1 and (expected > 0).sum() >= 4 * len(tiles)  # drawn in the grid, several pixels a tile
    wrong = drawn != expected
    # Pixels a hair from an edge may go either way (the outlines are densified lines); none further off.
    assert not (wrong & (margin > 0.02)).any(), f"{(wrong & (margin > 0.02)).sum()} pixels show another tile"
    assert wrong.mean() < 0.005
    # Every tile is seen, in its state.
    for code in set(expected.ravel()) - {0}:
        assert (drawn == code).sum() == pytest.approx((expected == code).sum(), rel=0.02)


def test_a_tile_alone_or_a_row_of_tiles_is_drawn_on_its_outline(tmp_path):
    """One tile, or tiles in one row, do not give both axes of their grid: drawn north up, a tile's side
    from its area."""
    g = UtmGrid(21, True, 30.0, 32)
    c0, r0 = g.tms().tile(-57.0, -10.0, 0)[:2]
    for n in (1, 5):
        tiles = [(t.tile_id, t.polygon_wgs84()) for t in (g.tile(c0 + c, r0) for c in range(n))]
        m, states = _drawn(tmp_path / str(n), tiles)
        expected, margin = _oracle(m, tiles, states, m.rasters[DATE])
        wrong = m.rasters[DATE] != expected
        assert not (wrong & (margin > 0.03)).any() and (expected > 0).sum() > 8 * n


def test_a_large_aoi_keeps_every_disturbed_tile_when_drawn_by_centres(tmp_path, monkeypatch):
    """Past MAX_SIDE pixels at 1.5 a tile, a pixel holds several tiles and shows the most telling state."""
    monkeypatch.setattr(map_layers, "MAX_SIDE", 16)
    g = WebMercatorGrid(14)
    x0, y0 = g.tms().tile(-57.0, -10.0, 14)[:2]
    tiles = [(f"WebMercatorQuad/14/{x0 + c}/{y0 + r}", g.polygon_wgs84(x0 + c, y0 + r))
             for r in range(40) for c in range(40)]
    m, states = _drawn(tmp_path, tiles)
    assert m.k == 3 and m.width == m.height == 14
    drawn = m.rasters[DATE]
    for (tile_id, outline) in tiles:
        if states[tile_id] == "disturbed":
            col = int((map_layers._mercator(outline.centroid.x, 0)[0] - m.x0) // m.cell)
            row = int((m.y1 - map_layers._mercator(0, outline.centroid.y)[1]) // m.cell)
            assert drawn[row, col] == map_layers.CODES["disturbed"]
    assert m.counts[DATE]["disturbed"] == sum(s == "disturbed" for s in states.values())


def test_each_aoi_and_date_is_drawn_from_its_own_tiles_whatever_their_grids(tmp_path):
    """Two AOIs, two dates each, and in one AOI the tiles of two UTM zones (two tile matrices, two
    lattices): every layer shows that date's state of that AOI's tiles, where their outlines are, and
    counts them; rows of several AOIs, dates and matrices arrive in one batch."""
    rng = np.random.default_rng(3)
    west, east = UtmGrid(21, True, 30.0, 32), UtmGrid(22, True, 30.0, 32)
    c21, r21 = west.tms().tile(-54.15, -12.0, 0)[:2]
    c22, r22 = east.tms().tile(-53.85, -12.0, 0)[:2]
    mercator = WebMercatorGrid(14)
    x0, y0 = mercator.tms().tile(-60.0, -3.0, 14)[:2]
    tiles = {
        "two-zones": [(t.tile_id, t.polygon_wgs84()) for g, c0, r0 in ((west, c21, r21), (east, c22, r22))
                      for t in (g.tile(c0 + c, r0 + r) for r in range(5) for c in range(4))],
        "mercator": [(f"WebMercatorQuad/14/{x0 + c}/{y0 + r}", mercator.polygon_wgs84(x0 + c, y0 + r))
                     for r in range(6) for c in range(7)],
    }
    later = dt.date(2026, 6, 15)
    scans, states = {}, {}
    for aoi, those in tiles.items():
        for date in (DATE, later):
            rows, states[aoi, date] = _rows(those, rng)
            scans[aoi, date] = rows
    con = tables.connect(tables.write_scans(tmp_path / "scans", scans), materialize=True)
    maps = map_layers.build(con, {"min_clear_fraction": 0.8})
    assert sorted(maps) == sorted(tiles)
    for (aoi, date), truth in states.items():
        m = maps[aoi]
        drawn = m.rasters[date]
        expected, margin = _oracle(m, tiles[aoi], truth, drawn)
        wrong = drawn != expected
        assert not (wrong & (margin > 0.02)).any(), (aoi, date, int((wrong & (margin > 0.02)).sum()))
        assert (expected > 0).sum() >= 4 * len(tiles[aoi])
        assert m.counts[date] == {name: sum(s == name for s in truth.values()) for name in map_layers.CODES}
    assert states["two-zones", DATE] != states["two-zones", later]


def test_rows_in_many_small_batches_draw_and_count_as_in_one(tmp_path, monkeypatch):
    """The rows stream in Arrow batches: layers and counts add up over batches that split AOIs and dates."""
    rng = np.random.default_rng(5)
    mercator = WebMercatorGrid(14)
    x0, y0 = mercator.tms().tile(-60.0, -3.0, 14)[:2]
    tiles = [(f"WebMercatorQuad/14/{x0 + c}/{y0 + r}", mercator.polygon_wgs84(x0 + c, y0 + r))
             for r in range(6) for c in range(7)]
    scans = {(aoi, date): _rows(tiles, rng)[0] for aoi in ("a", "b") for date in (DATE, dt.date(2026, 6, 15))}
    con = tables.connect(tables.write_scans(tmp_path / "scans", scans), materialize=True)
    whole = map_layers.build(con, {"min_clear_fraction": 0.8})
    monkeypatch.setattr(map_layers, "BATCH_ROWS", 5)
    batched = map_layers.build(con, {"min_clear_fraction": 0.8})
    for aoi, m in whole.items():
        assert batched[aoi].counts == m.counts and sum(m.counts[DATE].values()) == len(tiles)
        assert all(np.array_equal(batched[aoi].rasters[d], raster) for d, raster in m.rasters.items())


def _fixed(tiles, state):
    rows, _ = _rows(tiles, np.random.default_rng(0))
    labels = STATE_LABELS[state]
    return [{**r, "labels": labels, **{f"p_{n}": 0.9 if n in labels else 0.05 for n in LABELS}} for r in rows]


@pytest.mark.parametrize("disturbed_first", [True, False])
def test_where_two_grids_overlap_the_map_shows_the_more_important_state(tmp_path, disturbed_first):
    """Two scenes' native grids over the same ground (one AOI, two tile matrices): where one says disturbed
    and the other intact forest, the pixel shows disturbed, whichever grid is drawn last."""
    def grid(name):
        scene = NativeGrid(name, "EPSG:32721", (30.0, 0.0, 600_000.0, 0.0, -30.0, 8_900_000.0), 256, 256, 32)
        return [(t.tile_id, t.polygon_wgs84()) for t in (scene.tile(r, c) for r, c in scene.tiles())]

    disturbed, intact = _fixed(grid("sceneA"), "disturbed"), _fixed(grid("sceneB"), "primary")
    rows = disturbed + intact if disturbed_first else intact + disturbed
    con = tables.connect(tables.write_scans(tmp_path / "scans", {("a", DATE): rows}), materialize=True)
    [m] = map_layers.build(con, {"min_clear_fraction": 0.8}).values()
    drawn = m.rasters[DATE]
    assert (drawn > 0).sum() > 1000 and set(np.unique(drawn[drawn > 0])) == {map_layers.CODES["disturbed"]}


def test_a_wide_maps_bounds_and_its_png_with_no_tile_transparent(tmp_path):
    """One row of 12 tiles: the overlay's bounds (what Leaflet places the PNG by) hold every tile and no more
    than a tile besides each way; pixels without a tile are transparent."""
    import io

    from PIL import Image

    g = WebMercatorGrid(14)
    x0, y0 = g.tms().tile(-59.9, -30.0, 14)[:2]
    tiles = [(f"WebMercatorQuad/14/{x0 + c}/{y0}", g.polygon_wgs84(x0 + c, y0)) for c in range(12)]
    m, _ = _drawn(tmp_path, tiles)
    west, south, east, north = shapely.union_all([o for _, o in tiles]).bounds
    b_west, b_south, b_east, b_north = m.bounds
    side = (east - west) / 12
    assert m.width > 5 * m.height
    assert west - side <= b_west <= west and east <= b_east <= east + side
    assert south - side <= b_south <= south and north <= b_north <= north + side
    png = Image.open(io.BytesIO(m.png(DATE)))
    assert png.info.get("transparency") == 0 and np.asarray(png)[0, 0] == 0
