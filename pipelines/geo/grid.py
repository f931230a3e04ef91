"""Tile grids: which 256-px tiles cover a region, what each is called, and where its pixels lie.

Two grids, one interface:

* ``native``: tiles of ``tile_size`` pixels counted from the scene's top-left pixel, in the scene's own
  CRS and resolution. Ids are ``<scene_id>/<row>/<col>``. Right for training chips: no resampling.
* ``UTM``: a tile matrix set per UTM zone (defined with morecantile) whose cell size is chosen, e.g. the
  3 m of the chips a model learned from. Ids are ``UTM21S-3m/<col>/<row>``. Its ground pixel stays within
  a few per cent of the cell size across a zone and its neighbours, at any latitude: the scans' default.
* ``WebMercatorQuad`` at zoom ``z`` (OGC TileMatrixSet via morecantile). Ids are
  ``WebMercatorQuad/<z>/<x>/<y>``. Its ground pixel shrinks with cos(latitude): right for Planet's
  basemap quads, which are published on it at 4.77 m (z15).

On the fixed grids the same place has the same id in every scene and every scan, which is what lets
analysts follow a tile through time.

Geometries crossing module boundaries are shapely geometries in EPSG:4326 (longitude, latitude) unless
a name says otherwise. This module imports neither Beam nor TensorFlow.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

WGS84 = CRS.from_epsg(4326)
WGS84_WKT = WGS84.to_wkt()
WEB_MERCATOR_QUAD = "WebMercatorQuad"
NATIVE = "native"
UTM = "UTM"
GRIDS = (NATIVE, UTM, WEB_MERCATOR_QUAD)
GEOD = Geod(ellps="WGS84")
#: Points added per edge when a rectangle is reprojected, so curved edges stay close to the truth.
_DENSIFY = 21
#: How far (in pixels) simplifying a tile's reprojected outline may move it from the densified one.
OUTLINE_TOLERANCE_PX = 0.01


@dataclass(frozen=True)
class Tile:
    """One tile: its id and its pixel frame (``transform`` maps tile pixels to ``crs`` coordinates)."""

    tile_id: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    size: int

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    def bounds(self) -> tuple[float, float, float, float]:
        """``left, bottom, right, top`` of the tile in its own CRS."""
        left, top = self.affine @ (0, 0)
        right, bottom = self.affine @ (self.size, self.size)
        return min(left, right), min(top, bottom), max(left, right), max(top, bottom)

    def polygon_wgs84(self) -> BaseGeometry:
        """The tile's outline in EPSG:4326: reprojected with densified edges (a 256-px tile's within a
        fiftieth of a pixel of its true edges), then only the points needed to stay within
        :data:`OUTLINE_TOLERANCE_PX` of them.
        A 256-px UTM tile's edges bend by about a centimetre in longitude and latitude, so its outline is
        its 4 corners (5 points, against 85: scan rows and the report's tables 20 times smaller in
        geometry); a tile of 100 km keeps the points its curved edges need."""
        left, bottom, right, top = self.bounds()
        if self.crs == "EPSG:3857":  # a Web Mercator rectangle is a lon/lat rectangle: 5 exact corners
            west, south = _transformer("EPSG:3857", "EPSG:4326").transform(left, bottom)
            east, north = _transformer("EPSG:3857", "EPSG:4326").transform(right, top)
            return box(west, south, east, north)
        outline = reproject(box(left, bottom, right, top), self.crs, WGS84)
        west, south, east, north = outline.bounds
        pixel = max(east - west, north - south) / self.size
        return shapely.simplify(outline, OUTLINE_TOLERANCE_PX * pixel, preserve_topology=False)

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """``west, south, east, north`` of the tile in EPSG:4326: the bounds of :meth:`polygon_wgs84`'s
        densified outline, computed by PROJ without building it (a tenth of the time)."""
        bounds = self.bounds()
        transformer = _reprojection(_wkt(self.crs), WGS84_WKT)
        if transformer is not None:
            bounds = transformer.transform_bounds(*bounds, densify_pts=_DENSIFY)
        return tuple(float(v) for v in bounds)  # type: ignore[return-value]

    def ground_pixel_m(self) -> float:
        """The true (geodesic) size in metres of the tile's central pixel: what the model sees."""
        return ground_pixel_m(self.crs, self.affine, self.size / 2, self.size / 2)


def ground_pixel_m(crs: CRS | str, transform: Affine, col: float, row: float) -> float:
    """Geodesic size in metres of the pixel at ``col, row`` of a raster frame: the mean of its width and
    height measured on the WGS84 ellipsoid, so it is right in any CRS (UTM, Web Mercator, degrees)."""
    to_lonlat = _transformer(_wkt(crs), WGS84_WKT)
    corners = [transform @ (col, row), transform @ (col + 1, row), transform @ (col, row + 1)]
    (lon0, lat0), (lon1, lat1), (lon2, lat2) = (to_lonlat.transform(x, y) for x, y in corners)
    width = GEOD.inv(lon0, lat0, lon1, lat1)[2]
    height = GEOD.inv(lon0, lat0, lon2, lat2)[2]
    return (width + height) / 2


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


@lru_cache(maxsize=64)
def _reprojection(src: str, dst: str) -> Transformer | None:
    """``_transformer(src, dst)``, or ``None`` where the two are the same CRS."""
    return None if CRS.from_wkt(src) == CRS.from_wkt(dst) else _transformer(src, dst)


def _wkt(crs: CRS | str) -> str:
    """The CRS as WKT, parsed once per name: parsing and writing WKT cost 0.2 ms, more than reprojecting a
    tile's outline, and a pipeline asks for the same few CRSs for every tile."""
    if crs is WGS84:
        return WGS84_WKT
    return _wkt_of(crs) if isinstance(crs, str) else CRS.from_user_input(crs).to_wkt()


@lru_cache(maxsize=64)
def _wkt_of(name: str) -> str:
    return CRS.from_user_input(name).to_wkt()


def reproject(geometry: BaseGeometry, src_crs: CRS | str, dst_crs: CRS | str, densify: bool = True) -> BaseGeometry:
    """Reproject a shapely geometry, densifying its edges first so that long edges bend correctly
    (``densify=False`` for outlines traced on pixels, whose edges are pixels long and many already)."""
    transformer = _reprojection(_wkt(src_crs), _wkt(dst_crs))
    if transformer is None:
        return geometry
    minx, miny, maxx, maxy = geometry.bounds
    step = max(maxx - minx, maxy - miny) / _DENSIFY
    dense = shapely.segmentize(geometry, step) if step > 0 and densify else geometry
    return shapely.transform(dense, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def scene_footprint(crs: CRS | str, transform: Affine, width: int, height: int) -> BaseGeometry:
    """The scene's pixel extent as a polygon in EPSG:4326."""
    corners = [transform @ (0, 0), transform @ (width, 0), transform @ (width, height), transform @ (0, height)]
    xs, ys = zip(*corners)
    return reproject(box(min(xs), min(ys), max(xs), max(ys)), crs, WGS84)


@dataclass(frozen=True)
class SceneGrid:
    """A scene's pixel grid, as tiles are cut from it: what a reader says of a scene before any pixel is read."""

    scene_id: str
    crs: str
    transform: Affine
    width: int
    height: int

    def footprint(self) -> BaseGeometry:
        """The scene's pixel extent in EPSG:4326."""
        return scene_footprint(self.crs, self.transform, self.width, self.height)

    def native(self, tile_size: int) -> NativeGrid:
        """Tiles of ``tile_size`` pixels in the scene's own pixels."""
        return NativeGrid(self.scene_id, self.crs, tuple(self.transform)[:6], self.width, self.height, tile_size)


@dataclass(frozen=True)
class NativeGrid:
    """Tiles of ``tile_size`` pixels from a scene's top-left, in the scene's CRS."""

    scene_id: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    tile_size: int = 256

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of tiles; edge tiles hang over the scene and are padded with nodata."""
        return math.ceil(self.height / self.tile_size), math.ceil(self.width / self.tile_size)

    def tile(self, row: int, col: int) -> Tile:
        affine = Affine(*self.transform) * Affine.translation(col * self.tile_size, row * self.tile_size)
        return Tile(f"{self.scene_id}/{row}/{col}", self.crs, tuple(affine)[:6], self.tile_size)

    def tiles(self, region: BaseGeometry | None = None) -> list[tuple[int, int]]:
        """``(row, col)`` of the tiles that intersect ``region`` (EPSG:4326; ``None``: all tiles)."""
        rows, cols = self.shape
        if region is None:
            return [(r, c) for r in range(rows) for c in range(cols)]
        local = reproject(region, WGS84, self.crs)
        inverse = ~Affine(*self.transform)
        xs, ys = zip(*(inverse @ xy for xy in _corners(local.bounds)))
        r0, r1 = max(0, int(min(ys) // self.tile_size)), min(rows - 1, int(max(ys) // self.tile_size))
        c0, c1 = max(0, int(min(xs) // self.tile_size)), min(cols - 1, int(max(xs) // self.tile_size))
        prepared = prep(local)
        found = []
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                tile = self.tile(r, c)
                left, top = tile.affine @ (0, 0)
                right, bottom = tile.affine @ (self.tile_size, self.tile_size)
                if prepared.intersects(box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))):
                    found.append((r, c))
        return found


@dataclass(frozen=True)
class WebMercatorGrid:
    """The OGC ``WebMercatorQuad`` tile matrix set at one zoom level, 256-px tiles in EPSG:3857."""

    zoom: int
    tile_size: int = 256

    @property
    def crs(self) -> str:
        return "EPSG:3857"

    @property
    def name(self) -> str:
        """``WebMercatorQuad/15``: the tile matrix set and level."""
        return f"{WEB_MERCATOR_QUAD}/{self.zoom}"

    @staticmethod
    @functools.cache
    def tms() -> morecantile.TileMatrixSet:
        # morecantile hands out a deep copy of its definition on every get(): once is enough.
        return morecantile.tms.get(WEB_MERCATOR_QUAD)

    def tile(self, x: int, y: int) -> Tile:
        bounds = self.tms().xy_bounds(morecantile.Tile(x, y, self.zoom))
        res = (bounds.right - bounds.left) / self.tile_size
        affine = Affine(res, 0.0, bounds.left, 0.0, -res, bounds.top)
        return Tile(f"{WEB_MERCATOR_QUAD}/{self.zoom}/{x}/{y}", self.crs, tuple(affine)[:6], self.tile_size)

    def polygon_wgs84(self, x: int, y: int) -> BaseGeometry:
        """Exact outline of a tile in EPSG:4326 (a WebMercator tile is a lon/lat rectangle)."""
        b = self.tms().bounds(morecantile.Tile(x, y, self.zoom))
        return box(b.left, b.bottom, b.right, b.top)

    def tiles(self, region: BaseGeometry) -> list[tuple[int, int]]:
        """``(x, y)`` of the tiles whose outline intersects ``region`` (EPSG:4326), sorted."""
        if region.is_empty:
            return []
        west, south, east, north = region.bounds
        prepared = prep(region)
        found = [
            (t.x, t.y)
            for t in self.tms().tiles(west, south, east, north, [self.zoom], truncate=True)
            if prepared.intersects(self.polygon_wgs84(t.x, t.y))
        ]
        return sorted(found, key=lambda xy: (xy[1], xy[0]))


@dataclass(frozen=True)
class UtmGrid:
    """Square tiles of ``tile_size`` pixels of ``cell_size`` metres in one UTM zone (a morecantile tile
    matrix set). Pixel edges lie on multiples of the cell size from easting 0 and from the first
    multiple at or above northing 10,000 km, the same for every scene, so ids are stable across scans.
    """

    zone: int
    south: bool
    cell_size: float
    tile_size: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.zone <= 60:
            raise ValueError(f"UTM zone {self.zone}: must be 1 to 60")
        if self.cell_size <= 0:
            raise ValueError(f"cell size {self.cell_size}: must be positive metres")

    @property
    def crs(self) -> str:
        return utm_crs(self.zone, self.south)

    @property
    def name(self) -> str:
        """``UTM21S-3m``: the zone, its hemisphere and the cell size."""
        return f"UTM{self.zone}{'S' if self.south else 'N'}-{self.cell_size:g}m"

    def tms(self) -> morecantile.TileMatrixSet:
        return _utm_tms(self.zone, self.south, self.cell_size, self.tile_size)

    def tile(self, col: int, row: int) -> Tile:
        bounds = self.tms().xy_bounds(morecantile.Tile(col, row, 0))
        affine = Affine(self.cell_size, 0.0, bounds.left, 0.0, -self.cell_size, bounds.top)
        return Tile(f"{self.name}/{col}/{row}", self.crs, tuple(affine)[:6], self.tile_size)

    def tiles(self, region: BaseGeometry) -> list[tuple[int, int]]:
        """``(col, row)`` of the tiles whose outline intersects ``region`` (EPSG:4326), sorted by row."""
        if region.is_empty:
            return []
        local = reproject(region, WGS84, self.crs)
        size = self.cell_size * self.tile_size
        left, top = self.tms().xy_bounds(morecantile.Tile(0, 0, 0)).left, self.tms().xy_bounds(
            morecantile.Tile(0, 0, 0)).top
        minx, miny, maxx, maxy = local.bounds
        c0, c1 = math.floor((minx - left) / size), math.floor((maxx - left) / size)
        r0, r1 = math.floor((top - maxy) / size), math.floor((top - miny) / size)
        prepared = prep(local)
        return [
            (c, r)
            for r in range(r0, r1 + 1)
            for c in range(c0, c1 + 1)
            if prepared.intersects(box(left + c * size, top - (r + 1) * size, left + (c + 1) * size, top - r * size))
        ]

    @classmethod
    def for_region(cls, region: BaseGeometry, cell_size: float, tile_size: int = 256) -> UtmGrid:
        """The grid of the UTM zone that holds ``region``'s centre (EPSG:4326)."""
        zone, south = utm_zone(region.centroid.x, region.centroid.y)
        return cls(zone, south, cell_size, tile_size)


def utm_crs(zone: int, south: bool) -> str:
    """``EPSG:327zz`` (south) or ``EPSG:326zz`` (north): WGS 84 / UTM zone ``zone``."""
    return f"EPSG:{(32700 if south else 32600) + zone}"


def utm_zone(lon: float, lat: float) -> tuple[int, bool]:
    """``(zone, south)`` of the UTM zone holding a point (the plain 6-degree zones)."""
    return min(60, max(1, math.floor((lon + 180) / 6) + 1)), lat < 0


@lru_cache(maxsize=32)
def _utm_tms(zone: int, south: bool, cell_size: float, tile_size: int) -> morecantile.TileMatrixSet:
    size = cell_size * tile_size
    top = math.ceil(10_000_000 / cell_size) * cell_size
    cols, rows = math.ceil(1_000_000 / size), math.ceil(top / size)
    crs = CRS.from_user_input(utm_crs(zone, south))
    name = f"UTM{zone}{'S' if south else 'N'}-{cell_size:g}m"
    return morecantile.TileMatrixSet.custom([0.0, top - rows * size, cols * size, top], crs, tile_width=tile_size,
                                            tile_height=tile_size, matrix_scale=[cols, rows], minzoom=0, maxzoom=0,
                                            id=name.replace(".", "p"),  # a TileMatrixSet id has no dots
                                            title=f"{name} tiles of {tile_size} px")


def zoom_for_resolution(metres: float, latitude: float = 0.0) -> int:
    """The WebMercatorQuad zoom whose ground pixel size at ``latitude`` is closest to ``metres``.

    Closeness is measured as a ratio (log scale), so 3 m sits between z15 (4.8 m) and z16 (2.4 m) by
    how many times finer or coarser each is, not by metres.
    """
    tms = morecantile.tms.get(WEB_MERCATOR_QUAD)
    scale = math.cos(math.radians(latitude))
    return min(
        range(tms.minzoom, tms.maxzoom + 1),
        key=lambda z: abs(math.log(tms.matrix(z).cellSize * scale / metres)),
    )


def _corners(bounds: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    minx, miny, maxx, maxy = bounds
    return [(minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy)]
