"""How tiles are made from scenes: one typed :class:`TileSpec`, built once from flags, for chip, scan and stream.

A spec says which grid cuts the scenes (native pixels or a tile matrix set), how large a tile is, and how
much valid (and, for chips, clear) data a tile needs to be kept; how the scenes' pixels are read is the
sources' :class:`~pipelines.sources.reader.ReadOptions`. The Beam steps of :mod:`pipelines.steps.tiles`
take a spec and read options and nothing else, so the three pipelines cannot cut or read tiles
differently. This module imports no Beam and no GDAL.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from pipelines.geo.grid import (
    GRIDS,
    NATIVE,
    UTM,
    WEB_MERCATOR_QUAD,
    SceneGrid,
    Tile,
    UtmGrid,
    WebMercatorGrid,
)

#: WebMercatorQuad's tiles are 256 px by definition (OGC TileMatrixSet).
WEB_MERCATOR_TILE = 256
#: Threads reading a task's tiles unless ``--read_threads`` says otherwise (two: the scan's model and the
#: reads then keep pace on a 2-core worker; ``benchmarks/scan_throughput.py``).
DEFAULT_READ_THREADS = 2
MAX_ZOOM = 24


@dataclass(frozen=True)
class TileSpec:
    """Everything that decides which tiles a scene gives and how their pixels are read."""

    grid: str = NATIVE
    tile_size: int = 256
    zoom: int | None = None  # WebMercatorQuad level
    cell_size: float | None = None  # UTM grid: metres per pixel
    utm_zone: str | None = None  # UTM grid: e.g. "21S"; None: the zone of each AOI's (or scene's) centre
    min_valid_fraction: float = 0.5
    tiles_per_task: int = 64  # tiles read together from one open scene
    read_threads: int | None = None  # threads reading a task's tiles, each through its own open copy of the
    # scene; None: DEFAULT_READ_THREADS, or fewer when a task has fewer tiles
    skip_cloudier_than: float | None = None  # skip tiles whose cloud mask says less is clear (chips); None: keep all

    def __post_init__(self) -> None:
        if self.grid not in GRIDS:
            raise ValueError(f"--grid {self.grid!r}: choose from {', '.join(GRIDS)}")
        if self.tile_size <= 0:
            raise ValueError(f"--tile_size {self.tile_size}: must be a positive number of pixels")
        if not 0 <= self.min_valid_fraction <= 1:
            raise ValueError(f"--min_valid_fraction {self.min_valid_fraction}: must be between 0 and 1")
        if self.read_threads is None:  # frozen: the default follows the task's size, set once here
            object.__setattr__(self, "read_threads", min(DEFAULT_READ_THREADS, self.tiles_per_task))
        for flag, count in (("--tiles_per_task", self.tiles_per_task), ("--read_threads", self.read_threads)):
            if count <= 0:
                raise ValueError(f"{flag} {count}: must be positive")
        if self.read_threads > self.tiles_per_task:  # a thread per tile at most: more would never run
            raise ValueError(f"--read_threads {self.read_threads}: a task reads --tiles_per_task {self.tiles_per_task} "
                             f"tiles, one thread each at most; give at most {self.tiles_per_task}")
        if self.skip_cloudier_than is not None and not 0 <= self.skip_cloudier_than <= 1:
            raise ValueError(f"--skip_cloudier_than {self.skip_cloudier_than}: must be between 0 and 1")
        if self.zoom is not None and self.grid != WEB_MERCATOR_QUAD:
            raise ValueError(f"--zoom applies to --grid WebMercatorQuad, not to the {self.grid} grid")
        if (self.cell_size is not None or self.utm_zone is not None) and self.grid != UTM:
            raise ValueError(f"--cell_size and --utm_zone apply to --grid UTM, not to the {self.grid} grid")
        self._check_grid()

    def _check_grid(self) -> None:
        """What the UTM and WebMercatorQuad grids need besides their name."""
        if self.grid == UTM:
            if not self.cell_size or self.cell_size <= 0:
                raise ValueError("--grid UTM needs --cell_size, the ground pixel in metres (e.g. 3)")
            if self.utm_zone is not None:
                parse_zone(self.utm_zone)
        if self.grid == WEB_MERCATOR_QUAD:
            if self.zoom is None:
                raise ValueError("--grid WebMercatorQuad needs --zoom")
            if not 0 <= self.zoom <= MAX_ZOOM:
                raise ValueError(f"--zoom {self.zoom}: must be between 0 and {MAX_ZOOM}")
            if self.tile_size != WEB_MERCATOR_TILE:
                raise ValueError(f"tiles of {self.tile_size} px: WebMercatorQuad tiles are {WEB_MERCATOR_TILE} px; "
                                 "use --grid UTM (any tile size) or --grid native for other sizes")

    def tiles(self, scene: SceneGrid, region: BaseGeometry | None = None) -> list[Tile]:
        """The scene's tiles that intersect ``region`` (EPSG:4326; ``None``: the whole scene).

        A basin-sized region (thousands of vertices) costs little per scene: it is first clipped to the
        scene's bounding box, so the exact work is on the few vertices near the scene.
        """
        footprint = scene.footprint()
        near = None if region is None else shapely.clip_by_rect(region, *footprint.bounds)
        if near is not None and near.is_empty:
            return []
        if self.grid == NATIVE:
            grid = scene.native(self.tile_size)
            return [grid.tile(r, c) for r, c in grid.tiles(near)]
        area = footprint if near is None else footprint.intersection(near)
        matrix = self.matrix(footprint if region is None else region)  # the zone of the whole AOI
        return [matrix.tile(x, y) for x, y in matrix.tiles(area)]

    def matrix(self, where: BaseGeometry) -> UtmGrid | WebMercatorGrid:
        """The fixed grid (UTM or WebMercatorQuad) that tiles ``where`` (an AOI or, without one, a scene's
        footprint; EPSG:4326). The UTM zone is the spec's, else that of ``where``'s centre, so every scene
        of an AOI is cut on one zone's grid."""
        if self.grid == WEB_MERCATOR_QUAD:
            return WebMercatorGrid(self.zoom)
        if self.grid != UTM:
            raise ValueError(f"the {self.grid} grid is not a fixed tile matrix")
        if self.utm_zone:
            zone, south = parse_zone(self.utm_zone)
            return UtmGrid(zone, south, self.cell_size, self.tile_size)
        return UtmGrid.for_region(where, self.cell_size, self.tile_size)


def parse_zone(text: str) -> tuple[int, bool]:
    """``21S`` -> ``(21, True)``; a ``ValueError`` naming ``--utm_zone`` otherwise."""
    zone, hemisphere = text[:-1], text[-1:].upper()
    if not zone.isdigit() or hemisphere not in ("N", "S"):
        raise ValueError(f"--utm_zone {text!r}: write the zone number and N or S, e.g. 21S")
    if not 1 <= int(zone) <= 60:
        raise ValueError(f"--utm_zone {text!r}: UTM zones are numbered 1 to 60")
    return int(zone), hemisphere == "S"


def add_arguments(parser: argparse.ArgumentParser, grid_default: str, tile_size: bool = True) -> None:
    """The tile flags, defined once for every pipeline. ``tile_size=False`` for the scans, which take
    the tile size from the bundle."""
    group = parser.add_argument_group("tiles")
    group.add_argument("--grid", choices=GRIDS, default=grid_default, help=f"tile grid (default {grid_default})")
    group.add_argument("--zoom", type=int, help="WebMercatorQuad zoom level")
    group.add_argument("--cell_size", type=float, help="UTM grid: ground pixel in metres")
    group.add_argument("--utm_zone", help="UTM grid: the zone, e.g. 21S (default: the zone of the AOI's centre)")
    if tile_size:
        group.add_argument("--tile_size", type=int, default=256, help="tile size in pixels (native grid)")
    group.add_argument("--min_valid_fraction", type=float, default=0.5,
                       help="skip tiles with less valid (non-nodata) area than this")
    group.add_argument("--tiles_per_task", type=int, default=64, help="tiles read together from one open scene")
    group.add_argument("--read_threads", type=int,
                       help="threads reading a task's tiles at once, each through its own open copy of the scene "
                            f"(GDAL decodes in parallel; default {DEFAULT_READ_THREADS}, at most --tiles_per_task)")


def from_args(args: argparse.Namespace, *, tile_size: int | None = None, zoom: int | None = None,
              cell_size: float | None = None, utm_zone: str | None = None) -> TileSpec:
    """A :class:`TileSpec` from parsed flags; the keyword arguments stand in for flags not given (the
    scan takes the tile size and cell size from its bundle and the UTM zone from its AOI). Chip's
    ``--skip_cloudier_than`` skips tiles too cloudy by their mask (the scans keep every tile)."""
    return TileSpec(grid=args.grid, tile_size=tile_size or getattr(args, "tile_size", 256),
                    zoom=zoom if zoom is not None else args.zoom,
                    cell_size=(args.cell_size or cell_size) if args.grid == UTM else args.cell_size,
                    utm_zone=args.utm_zone or (utm_zone if args.grid == UTM else None),
                    min_valid_fraction=args.min_valid_fraction, tiles_per_task=args.tiles_per_task,
                    read_threads=args.read_threads, skip_cloudier_than=getattr(args, "skip_cloudier_than", None))
