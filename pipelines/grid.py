"""Tile grids: which 256-px tiles cover a region, what each is called, and where its pixels lie.

Two grids, one interface:

* ``native``: tiles of ``tile_size`` pixels counted from the scene's top-left pixel, in the scene's own
  CRS and resolution. Ids are ``<scene_id>/<row>/<col>``. Right for training chips: no resampling.
* ``WebMercatorQuad`` at zoom ``z`` (OGC TileMatrixSet via morecantile). Ids are
  ``WebMercatorQuad/<z>/<x>/<y>``: the same place has the same id in every scene and every scan, which
  is what lets analysts follow a tile through time.

Geometries crossing module boundaries are shapely geometries in EPSG:4326 (longitude, latitude) unless
a name says otherwise. This module imports neither Beam nor TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

WGS84 = CRS.from_epsg(4326)
WEB_MERCATOR_QUAD = "WebMercatorQuad"
NATIVE = "native"
GRIDS = (NATIVE, WEB_MERCATOR_QUAD)
#: Points added per edge when a rectangle is reprojected, so curved edges stay close to the truth.
_DENSIFY = 21


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

    def polygon_wgs84(self) -> BaseGeometry:
        """The tile's outline in EPSG:4326 (densified, so it is exact to well under a pixel)."""
        left, top = self.affine @ (0, 0)
        right, bottom = self.affine @ (self.size, self.size)
        if self.crs == "EPSG:3857":  # a Web Mercator rectangle is a lon/lat rectangle: 5 exact corners
            west, south = _transformer("EPSG:3857", "EPSG:4326").transform(left, bottom)
            east, north = _transformer("EPSG:3857", "EPSG:4326").transform(right, top)
            return box(west, south, east, north)
        return reproject(box(min(left, right), min(top, bottom), max(left, right), max(top, bottom)),
                         self.crs, WGS84)

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """``west, south, east, north`` of the tile in EPSG:4326."""
        return tuple(float(v) for v in self.polygon_wgs84().bounds)  # type: ignore[return-value]


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def reproject(geometry: BaseGeometry, src_crs: CRS | str, dst_crs: CRS | str) -> BaseGeometry:
    """Reproject a shapely geometry, densifying its edges first so that long edges bend correctly."""
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    if src == dst:
        return geometry
    minx, miny, maxx, maxy = geometry.bounds
    step = max(maxx - minx, maxy - miny) / _DENSIFY
    dense = shapely.segmentize(geometry, step) if step > 0 else geometry
    transformer = _transformer(src.to_wkt(), dst.to_wkt())
    return shapely.transform(dense, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def scene_footprint(crs: CRS | str, transform: Affine, width: int, height: int) -> BaseGeometry:
    """The scene's pixel extent as a polygon in EPSG:4326."""
    corners = [transform @ (0, 0), transform @ (width, 0), transform @ (width, height), transform @ (0, height)]
    xs, ys = zip(*corners)
    return reproject(box(min(xs), min(ys), max(xs), max(ys)), crs, WGS84)


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

    def window(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``col_off, row_off, width, height`` of a tile in scene pixels."""
        return col * self.tile_size, row * self.tile_size, self.tile_size, self.tile_size

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

    @staticmethod
    def tms() -> morecantile.TileMatrixSet:
        return morecantile.tms.get(WEB_MERCATOR_QUAD)

    def resolution(self) -> float:
        """Pixel size in EPSG:3857 metres at this zoom (true ground size shrinks with cos(latitude))."""
        return self.tms().matrix(self.zoom).cellSize

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


def parse_region(text: str) -> BaseGeometry:
    """An AOI from ``west,south,east,north`` (EPSG:4326) or a GeoJSON file (any CRS named in it).

    A GeoJSON FeatureCollection gives the union of its features. A legacy ``crs`` member is honoured;
    without it coordinates are EPSG:4326 as RFC 7946 says.
    """
    import json

    parts = text.split(",")
    if len(parts) == 4:
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            pass
        else:
            if not (west < east and south < north):
                raise ValueError(f"bounding box {text!r} must be west,south,east,north with west<east, south<north")
            return box(west, south, east, north)
    from pipelines import storage

    try:
        document = json.loads(storage.read_text(text))
    except FileNotFoundError as error:
        raise ValueError(f"AOI {text!r} is neither west,south,east,north nor a readable GeoJSON file") from error
    return geojson_geometry(document, source=text)


def geojson_geometry(document: dict, source: str = "GeoJSON") -> BaseGeometry:
    """The union of the geometries in a GeoJSON object, reprojected to EPSG:4326."""
    from shapely.geometry import shape

    kind = document.get("type")
    if kind == "FeatureCollection":
        geometries = [shape(f["geometry"]) for f in document.get("features", []) if f.get("geometry")]
    elif kind == "Feature":
        geometries = [shape(document["geometry"])]
    elif kind in ("Polygon", "MultiPolygon"):
        geometries = [shape(document)]
    else:
        raise ValueError(f"{source}: expected a FeatureCollection, Feature, Polygon or MultiPolygon, got {kind!r}")
    if not geometries:
        raise ValueError(f"{source}: no geometry in it")
    merged = shapely.union_all([shapely.make_valid(g) for g in geometries])
    crs_name = (document.get("crs") or {}).get("properties", {}).get("name")
    return reproject(merged, crs_name, WGS84) if crs_name else merged
