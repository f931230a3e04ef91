"""The report map's tile layers: one small PNG per AOI and scan date, in Web Mercator.

A page that draws every tile as a vector shape grows with the AOI (211 MB for 313,000 tiles over three
dates); a raster does not. Each scan date of an AOI becomes a palette PNG in Web Mercator whose pixels
are coloured by the state of the tile under them (``tile_states.sql``), which the page lays on its
Leaflet map as an image overlay: the same bytes whatever the zoom, drawn crisp (nearest neighbour) when
zoomed in.

Tiles are drawn where they are, in their own grid. The tiles of one tile matrix (``UTM21S-3m``,
``WebMercatorQuad/16``, one scene's native grid: the tile id less its column and row) are squares of a
regular lattice in that grid's CRS, so their centres there are an exact affine function of (column,
row): fitted on the tiles' centres (the UTM zone of the matrix name; EPSG:3857 for WebMercatorQuad; for
a native grid, whichever of the AOI's UTM zone and EPSG:3857 fits it better), each map pixel's centre is
taken back through pyproj and that function to the tile that holds it (:class:`_Lattice`). A UTM tile's
edges then fall where its outline (the events', the clearings') falls, to the pixel, although UTM tiles
are turned against Web Mercator by the grid convergence and their size varies with latitude. An AOI is
drawn at up to :data:`PIXELS_PER_TILE` pixels a tile side, fewer when that would pass :data:`MAX_SIDE`.

Larger AOIs, with under 1.5 pixels a tile side at :data:`MAX_SIDE` (a tile could then fall between
pixel centres), are drawn with one pixel per ``k x k`` tiles (``k`` the smallest that fits), each pixel
taking the state that matters most among the tiles whose centres fall in it (:data:`STATES` order:
disturbed over obscured over cloudy ...), so a clearing never vanishes when zoomed out; at that scale a
tile is smaller than a screen pixel. At :data:`MAX_SIDE` = 2048, an AOI's layer is at most 4 megapixels,
typically a few hundred kB as PNG. Rows stream from DuckDB in Arrow batches: memory holds the rasters
and one state per tile and date, not the rows.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image
from pyproj import Transformer

from pipelines.analysis import queries
from pipelines.geo.grid import utm_crs, utm_zone
from pipelines.geo.tiling import parse_zone

#: Tile states (``tile_states.sql``) in painting priority, lowest first, with colour and legend text.
STATES: tuple[tuple[str, str, str], ...] = (
    ("other", "#d7ccc8", "other (haze, partly cloudy with nothing else)"),
    ("primary", "#2e7d32", "intact primary forest"),
    ("water", "#3f7fd0", "water"),
    ("cloudy", "#bdbdbd", "cloudy"),
    ("unjudged", "#b39ddb", "not judged: the scene's cloud mask could not be read there"),
    ("obscured", "#8e8e8e", "obscured: cloud-free by its labels, too little clear by the UDM2 to judge"),
    ("disturbed", "#e07b39", "forest disturbed: agriculture, roads, habitation, bare ground, burns, mines ..."),
)
CODES = {name: i + 1 for i, (name, _, _) in enumerate(STATES)}  # 0: no tile
_STATE_NAMES = pa.array(list(CODES))
MAX_SIDE = 2048
PIXELS_PER_TILE = 8
#: Fewer pixels a tile side than this and a turned tile may hold no pixel centre: drawn by centres instead.
MIN_PIXELS_PER_TILE = 1.5
#: Room around the tiles' centres, beyond half a tile, in tiles: a tile turned 5 degrees (UTM's grid
#: convergence at 10 degrees of latitude past a zone's edge) reaches 0.07 of a side further.
_TURNED = 0.1
#: Rows of one Arrow batch from DuckDB: what memory holds of the rows at a time.
BATCH_ROWS = 262_144
_R = 6378137.0  # the Web Mercator sphere
_MERCATOR = "EPSG:3857"


@dataclass
class AoiMap:
    """One AOI's raster frame and its layers (``{scan_date: codes}``), with tile counts per state and date."""

    aoi: str
    x0: float  # Web Mercator metres: west edge
    y1: float  # north edge
    cell: float  # one pixel, metres
    width: int
    height: int
    k: int  # tiles per pixel side: 1 when tiles are drawn in their grid (several pixels a tile)
    rasters: dict[dt.date, np.ndarray] = field(default_factory=dict)
    counts: dict[dt.date, dict[str, int]] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the rasters in degrees (what Leaflet's overlay takes)."""
        west, north = _lonlat(self.x0, self.y1)
        east, south = _lonlat(self.x0 + self.width * self.cell, self.y1 - self.height * self.cell)
        return float(west), float(south), float(east), float(north)

    def png(self, date: dt.date) -> bytes:
        """Layer ``date`` as a palette PNG at zlib's default level: ``optimize`` took five times as long for a
        file no smaller (1.45 against 0.29 s, 0.74 against 0.64 MB for three layers of 1121 x 1121)."""
        image = Image.fromarray(self.rasters[date], mode="P")
        palette = [0, 0, 0]
        for _, colour, _ in STATES:
            palette += [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        image.putpalette(palette)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", transparency=0)
        return buffer.getvalue()

    def layer(self, date: dt.date) -> np.ndarray:
        return self.rasters.setdefault(date, np.zeros((self.height, self.width), np.uint8))

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude of every pixel's centre, row-major."""
        x = self.x0 + (np.arange(self.width) + 0.5) * self.cell
        y = self.y1 - (np.arange(self.height) + 0.5) * self.cell
        return _lonlat(*np.meshgrid(x, y))


def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _R * np.radians(lon), _R * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))


def _lonlat(x, y):  # noqa: ANN001, ANN202 - floats or arrays alike
    return np.degrees(np.asarray(x) / _R), np.degrees(2 * np.arctan(np.exp(np.asarray(y) / _R)) - np.pi / 2)


class _Lattice:
    """One tile matrix's tiles as drawn on an AOI's map: which tile (as an index into the matrix's states)
    each pixel shows, from the affine function between (column, row) and the tiles' centres in the grid's
    CRS (see the module docstring)."""

    def __init__(self, m: AoiMap, tile: float, matrix: str, a: np.ndarray, b: np.ndarray, lon: np.ndarray,
                 lat: np.ndarray, side: float) -> None:
        self.a0, self.b0 = int(a.min()), int(b.min())
        self.na, self.nb = int(a.max()) - self.a0 + 1, int(b.max()) - self.b0 + 1
        to_grid = _fit(matrix, a, b, lon, lat, side)
        # Only the pixels within a tile of the matrix's tile centres (``tile``: a side in Web Mercator
        # metres): a scene's native grid covers a corner of the AOI.
        x, y = _mercator(lon, lat)
        cols = np.clip(((np.array([x.min() - tile, x.max() + tile]) - m.x0) // m.cell).astype(int), 0, m.width)
        rows = np.clip(((m.y1 - np.array([y.max() + tile, y.min() - tile])) // m.cell).astype(int), 0, m.height)
        xs = m.x0 + (np.arange(cols[0], cols[1]) + 0.5) * m.cell
        ys = m.y1 - (np.arange(rows[0], rows[1]) + 0.5) * m.cell
        px, py = np.meshgrid(xs, ys)
        u, v = to_grid(px.ravel(), py.ravel())
        ia, ib = np.floor(u).astype(np.int64) - self.a0, np.floor(v).astype(np.int64) - self.b0
        inside = (ia >= 0) & (ia < self.na) & (ib >= 0) & (ib < self.nb)
        pr, pc_ = np.divmod(np.flatnonzero(inside), len(xs))
        self.pixels = (pr + rows[0]) * m.width + pc_ + cols[0]  # flat indices into the AOI's raster
        self.tiles = ia[inside] * self.nb + ib[inside]  # flat indices into this matrix's states

    def index(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a - self.a0) * self.nb + (b - self.b0)


def _fit(matrix: str, a: np.ndarray, b: np.ndarray, lon: np.ndarray, lat: np.ndarray,  # noqa: ANN202
         side: float):
    """``to_grid(x, y) -> (u, v)``: fractional (column, row) of Web Mercator points, from the least-squares affine
    function ``[col + 0.5, row + 0.5, 1] @ M`` = the tile's centre in the chosen CRS. The CRS is the
    matrix's own where its name says it, else the one the centres fit best. ``side``: a tile's side on
    the ground, metres, for tiles in one line (their centres alone do not give both axes)."""
    if matrix.startswith("UTM") and "-" in matrix:  # UtmGrid.name: UTM21S-3m
        candidates = [utm_crs(*parse_zone(matrix[3:].split("-", 1)[0]))]
    elif matrix.startswith("WebMercatorQuad"):
        candidates = [_MERCATOR]
    else:
        candidates = [utm_crs(*utm_zone(float(np.median(lon)), float(np.median(lat)))), _MERCATOR]
    grid = np.column_stack([a + 0.5, b + 0.5, np.ones(len(a))])
    best = None
    for crs in candidates:
        transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        centres = np.column_stack(transformer.transform(lon, lat))
        if np.linalg.matrix_rank(grid) == 3:
            forward, *_ = np.linalg.lstsq(grid, centres, rcond=None)
        else:  # tiles in one line: the grid's axes are the CRS's (north up), a tile's side from its area
            forward = _axis_aligned(matrix, grid, centres, side, crs == _MERCATOR, lat)
        error = np.abs(centres - grid @ forward).max()
        if best is None or error < best[0]:
            best = (error, transformer, forward)
    _, transformer, forward = best
    linear, offset = forward[:2], forward[2]
    back = np.linalg.inv(linear)

    mercator = transformer.target_crs.to_epsg() == 3857

    def to_grid(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, n = (x, y) if mercator else transformer.transform(*_lonlat(x, y))
        uv = (np.column_stack([e, n]) - offset) @ back
        return uv[:, 0], uv[:, 1]

    return to_grid


def _axis_aligned(matrix: str, grid: np.ndarray, centres: np.ndarray, side: float, mercator: bool,
                  lat: np.ndarray) -> np.ndarray:
    """``M`` of a grid whose columns run east and rows south in its CRS (UTM and WebMercatorQuad grids,
    north-up scenes' native grids, whose ids name the row first), through the tiles' mean centre."""
    step = side / math.cos(math.radians(float(np.mean(lat)))) if mercator else side
    first, second = ((0.0, -step), (step, 0.0)) if not matrix.startswith(("UTM", "WebMercatorQuad")) else \
        ((step, 0.0), (0.0, -step))
    linear = np.array([first, second])
    offset = centres.mean(axis=0) - grid[:, :2].mean(axis=0) @ linear
    return np.vstack([linear, offset])


def build(con, params: Mapping[str, object]) -> dict[str, AoiMap]:  # noqa: ANN001 - duckdb connection
    """Every AOI's map from the observations in ``con`` (:func:`pipelines.analysis.queries.connect`)."""
    maps: dict[str, AoiMap] = {}
    extents = con.execute(
        f"SELECT aoi, MIN(lon), MAX(lon), MIN(lat), MAX(lat), MEDIAN(SQRT(area_m2) / COS(RADIANS(lat))) "
        f"FROM {queries.DATASET}.observations GROUP BY aoi").fetchall()
    for aoi, west, east, south, north, tile in extents:
        (xw, xe), (ys, yn) = _mercator(np.array([west, east]), np.array([south, north]))
        cols, rows = round((xe - xw) / tile) + 1, round((yn - ys) / tile) + 1
        per_tile = min(PIXELS_PER_TILE, MAX_SIDE / (max(cols, rows) + 2))
        if per_tile >= MIN_PIXELS_PER_TILE:
            # In the tiles' grid: pixel edges on the outer tiles' edges (exact for a grid square to Web
            # Mercator), with room for turned corners.
            cell = tile / math.floor(per_tile)
            room = math.ceil(_TURNED * math.floor(per_tile)) * cell
            maps[aoi] = AoiMap(aoi, x0=xw - tile / 2 - room, y1=yn + tile / 2 + room, cell=cell,
                               width=round((xe - xw + tile + 2 * room) / cell),
                               height=round((yn - ys + tile + 2 * room) / cell), k=1)
        else:
            k = max(1, math.ceil(max(cols, rows) / MAX_SIDE))
            maps[aoi] = AoiMap(aoi, x0=xw - tile / 2, y1=yn + tile / 2, cell=tile * k, width=math.ceil(cols / k),
                               height=math.ceil(rows / k), k=k)
    sides = {aoi: tile for aoi, *_, tile in extents}
    lattices = _lattices(con, {aoi: m for aoi, m in maps.items() if m.cell < sides[aoi]}, sides)
    states: dict[tuple[str, str, dt.date], np.ndarray] = {}
    reader = queries.batches(con, "tile_states", params, columns=("aoi", "scan_date", "state", "tile_id", "lon",
                                                                  "lat"), rows=BATCH_ROWS)
    for batch in reader:
        codes = (pc.index_in(batch.column("state"), value_set=_STATE_NAMES).to_numpy() + 1).astype(np.uint8)
        days = _groups(batch.column("scan_date"))
        matrices, a, b = _positions(batch.column("tile_id")) if lattices else ([], None, None)
        for aoi, here in _groups(batch.column("aoi")):
            m = maps[aoi]
            for day, on_day in days:
                same = here & on_day
                if not same.any():
                    continue
                tally = m.counts.setdefault(day, dict.fromkeys(CODES, 0))
                for name, n in zip(CODES, np.bincount(codes[same], minlength=len(CODES) + 1)[1:]):
                    tally[name] += int(n)
                if aoi in lattices:
                    for matrix, in_matrix in matrices:
                        one = same & in_matrix
                        if not one.any():
                            continue
                        lattice = lattices[aoi][matrix]
                        key = (aoi, matrix, day)
                        if key not in states:
                            states[key] = np.zeros(lattice.na * lattice.nb, np.uint8)
                        np.maximum.at(states[key], lattice.index(a[one], b[one]), codes[one])
                    m.layer(day)
                else:
                    x, y = _mercator(batch.column("lon").to_numpy()[same], batch.column("lat").to_numpy()[same])
                    col = np.clip(((x - m.x0) // m.cell).astype(np.int64), 0, m.width - 1)
                    row = np.clip(((m.y1 - y) // m.cell).astype(np.int64), 0, m.height - 1)
                    np.maximum.at(m.layer(day), (row, col), codes[same])
    for (aoi, matrix, day), tile_codes in states.items():
        lattice, flat = lattices[aoi][matrix], maps[aoi].layer(day).ravel()
        flat[lattice.pixels] = np.maximum(flat[lattice.pixels], tile_codes[lattice.tiles])
    return maps


def _groups(column: pa.Array) -> list[tuple[object, np.ndarray]]:
    """Each distinct value of an Arrow column with the mask of the rows that hold it: Arrow's hashing
    dictionary encoding, where ``np.unique`` over the strings as Python objects sorted them (half the
    map's time)."""
    encoded = pc.dictionary_encode(column)
    indices = encoded.indices.to_numpy()
    return [(value, indices == i) for i, value in enumerate(encoded.dictionary.to_pylist())]


def _positions(tile_ids: pa.Array) -> tuple[list[tuple[object, np.ndarray]], np.ndarray, np.ndarray]:
    """The tile matrices among ``tile_ids`` (:func:`_groups`) and each id's grid coordinates ``(a, b)``: its
    last two parts are grid coordinates, the rest names the grid (:func:`pipelines.analysis.events.tile_position`,
    for an Arrow column at once)."""
    parts = pc.split_pattern(tile_ids, "/", max_splits=2, reverse=True)
    a = pc.cast(pc.list_element(parts, 1), pa.int64()).to_numpy()
    b = pc.cast(pc.list_element(parts, 2), pa.int64()).to_numpy()
    return _groups(pc.list_element(parts, 0)), a, b


def _lattices(con, maps: Mapping[str, AoiMap],  # noqa: ANN001 - duckdb connection
              sides: Mapping[str, float]) -> dict[str, dict[str, _Lattice]]:
    """The :class:`_Lattice` of every tile matrix of the AOIs drawn in their tiles' grids (``maps``),
    fitted on each tile's centre (one row per tile); ``sides``: each AOI's tile side in Web Mercator metres."""
    aois = sorted(maps)
    if not aois:
        return {}
    table = con.sql(
        f"SELECT aoi, tile_id, ANY_VALUE(lon) AS lon, ANY_VALUE(lat) AS lat, ANY_VALUE(area_m2) AS area "
        f"FROM {queries.DATASET}.observations "
        f"WHERE aoi IN ({', '.join('?' * len(aois))}) GROUP BY aoi, tile_id", params=aois).to_arrow_table()
    out: dict[str, dict[str, _Lattice]] = {}
    matrices, a, b = _positions(table.column("tile_id").combine_chunks())
    lon, lat = table.column("lon").to_numpy(), table.column("lat").to_numpy()
    area = table.column("area").to_numpy()
    for aoi, in_aoi in _groups(table.column("aoi").combine_chunks()):
        for matrix, in_matrix in matrices:
            one = in_aoi & in_matrix
            if one.any():
                out.setdefault(aoi, {})[matrix] = _Lattice(maps[aoi], sides[aoi], matrix, a[one], b[one], lon[one],
                                                           lat[one], float(np.sqrt(np.median(area[one]))))
    return out
