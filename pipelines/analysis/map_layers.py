"""The report map's tile layers: one small PNG per AOI and scan date, a pixel per grid tile.

A page that draws every tile as a vector shape grows with the AOI (211 MB for 313,000 tiles over three
dates); a raster does not. Each scan date of an AOI becomes a palette PNG in Web Mercator whose pixels
are grid tiles coloured by their state (``tile_states.sql``), which the page lays on its Leaflet map as
an image overlay: the same bytes whatever the zoom, drawn crisp (nearest neighbour) when zoomed in.

The tiles are placed by their centres on a Web Mercator lattice whose cell is the tiles' median size in
Web Mercator metres (the tile's geodesic side over cos(latitude)), worked out in SQL, so no geometry is
parsed: exact for the default ``WebMercatorQuad`` grid, within a fraction of a tile for UTM grids over
a few hundred kilometres. Larger AOIs than :data:`MAX_SIDE` tiles a side are drawn with one pixel per
``k x k`` tiles (``k`` the smallest that fits), each pixel taking the state that matters most
(:data:`STATES` order: disturbed over obscured over cloudy ...), so a clearing never vanishes when
zoomed out; at :data:`MAX_SIDE` = 2048, an AOI's layer is at most 4 megapixels, typically a few
hundred kB as PNG. Rows stream from DuckDB in Arrow batches: memory holds the rasters, not the rows.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pipelines.analysis import queries

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
MAX_SIDE = 2048
_R = 6378137.0  # the Web Mercator sphere


@dataclass
class AoiMap:
    """One AOI's lattice and its layers (``{scan_date: PNG bytes}``), with tile counts per state and date."""

    aoi: str
    x0: float  # Web Mercator metres: west edge
    y1: float  # north edge
    cell: float  # one pixel, metres (tile size x k)
    width: int
    height: int
    k: int  # tiles per pixel side
    rasters: dict[dt.date, np.ndarray] = field(default_factory=dict)
    counts: dict[dt.date, dict[str, int]] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the rasters in degrees (what Leaflet's overlay takes)."""
        west, north = _lonlat(self.x0, self.y1)
        east, south = _lonlat(self.x0 + self.width * self.cell, self.y1 - self.height * self.cell)
        return west, south, east, north

    def png(self, date: dt.date) -> bytes:
        image = Image.fromarray(self.rasters[date], mode="P")
        palette = [0, 0, 0]
        for _, colour, _ in STATES:
            palette += [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        image.putpalette(palette)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True, transparency=0)
        return buffer.getvalue()


def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _R * np.radians(lon), _R * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / _R), math.degrees(2 * math.atan(math.exp(y / _R)) - math.pi / 2)


def build(con, params: Mapping[str, object]) -> dict[str, AoiMap]:  # noqa: ANN001 - duckdb connection
    """Every AOI's map from the observations in ``con`` (:func:`pipelines.analysis.queries.connect`)."""
    maps: dict[str, AoiMap] = {}
    extents = con.execute(
        f"SELECT aoi, MIN(lon), MAX(lon), MIN(lat), MAX(lat), MEDIAN(SQRT(area_m2) / COS(RADIANS(lat))) "
        f"FROM {queries.DATASET}.observations GROUP BY aoi").fetchall()
    for aoi, west, east, south, north, tile in extents:
        (xw, xe), (ys, yn) = _mercator(np.array([west, east]), np.array([south, north]))
        cols, rows = round((xe - xw) / tile) + 1, round((yn - ys) / tile) + 1
        k = max(1, math.ceil(max(cols, rows) / MAX_SIDE))
        maps[aoi] = AoiMap(aoi, x0=xw - tile / 2, y1=yn + tile / 2, cell=tile * k, width=math.ceil(cols / k),
                           height=math.ceil(rows / k), k=k)
    reader = queries.batches(con, "tile_states", params, columns=("aoi", "scan_date", "state", "lon", "lat"))
    for batch in reader:
        aois = batch.column("aoi").to_numpy(zero_copy_only=False)
        dates = batch.column("scan_date").to_numpy(zero_copy_only=False)
        codes = np.array([CODES[s] for s in batch.column("state").to_pylist()], np.uint8)
        x, y = _mercator(batch.column("lon").to_numpy(), batch.column("lat").to_numpy())
        for aoi in np.unique(aois):
            m = maps[aoi]
            here = aois == aoi
            col = np.clip(((x[here] - m.x0) // m.cell).astype(np.int64), 0, m.width - 1)
            row = np.clip(((m.y1 - y[here]) // m.cell).astype(np.int64), 0, m.height - 1)
            for date in np.unique(dates[here]):
                same = dates[here] == date
                day = date.astype("datetime64[D]").astype(object)  # datetime.date
                raster = m.rasters.setdefault(day, np.zeros((m.height, m.width), np.uint8))
                np.maximum.at(raster, (row[same], col[same]), codes[here][same])
                tally = m.counts.setdefault(day, dict.fromkeys(CODES, 0))
                for name, n in zip(CODES, np.bincount(codes[here][same], minlength=len(CODES) + 1)[1:]):
                    tally[name] += int(n)
    return maps
