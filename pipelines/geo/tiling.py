"""How tiles are made from scenes: one typed :class:`TileSpec`, built once from flags, for chip, scan and stream.

A spec says which grid cuts the scenes (native pixels or a tile matrix set), how large a tile is, which
bands are read and in which source order, and how much valid data a tile needs to be kept. The Beam
steps of :mod:`pipelines.steps.tiles` take a spec and nothing else, so the three pipelines cannot cut
or read tiles differently. This module imports no Beam.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from pipelines.geo import masks
from pipelines.geo.grid import (
    GRIDS,
    NATIVE,
    UTM,
    WEB_MERCATOR_QUAD,
    NativeGrid,
    Tile,
    UtmGrid,
    WebMercatorGrid,
    scene_footprint,
)
from pipelines.geo.scenes import SceneReader, SceneSource, parse_band_order

#: WebMercatorQuad's tiles are 256 px by definition (OGC TileMatrixSet).
WEB_MERCATOR_TILE = 256
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
    band_order: tuple[str, ...] | None = None  # source band roles, when colour interpretation does not say
    bands: tuple[str, ...] | None = None  # record bands to read; None: every one the scene has
    tiles_per_task: int = 64  # tiles read together from one open scene
    cloud_mask: str = masks.AUTO  # read each scene's UDM2: auto (when present), udm2 (required), none
    min_clear_fraction: float | None = None  # skip tiles whose UDM2 says less is clear (chips); None: keep all

    def __post_init__(self) -> None:
        if self.grid not in GRIDS:
            raise ValueError(f"--grid {self.grid!r}: choose from {', '.join(GRIDS)}")
        if self.tile_size <= 0:
            raise ValueError(f"--tile_size {self.tile_size}: must be a positive number of pixels")
        if not 0 <= self.min_valid_fraction <= 1:
            raise ValueError(f"--min_valid_fraction {self.min_valid_fraction}: must be between 0 and 1")
        if self.tiles_per_task <= 0:
            raise ValueError(f"--tiles_per_task {self.tiles_per_task}: must be positive")
        if self.cloud_mask not in masks.CLOUD_MASKS:
            raise ValueError(f"--cloud_mask {self.cloud_mask!r}: choose from {', '.join(masks.CLOUD_MASKS)}")
        if self.min_clear_fraction is not None:
            if not 0 <= self.min_clear_fraction <= 1:
                raise ValueError(f"--min_clear_fraction {self.min_clear_fraction}: must be between 0 and 1")
            if self.cloud_mask == masks.NONE:
                raise ValueError("--min_clear_fraction needs the scenes' UDM2 masks; it cannot go with --cloud_mask none")
        if self.zoom is not None and self.grid != WEB_MERCATOR_QUAD:
            raise ValueError(f"--zoom applies to --grid WebMercatorQuad, not to the {self.grid} grid")
        if (self.cell_size is not None or self.utm_zone is not None) and self.grid != UTM:
            raise ValueError(f"--cell_size and --utm_zone apply to --grid UTM, not to the {self.grid} grid")
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

    def open(self, source: SceneSource) -> SceneReader:
        """The scene, opened to read this spec's bands (a context manager)."""
        return SceneReader(source, self.band_order, self.bands, self.cloud_mask)

    def tiles(self, reader: SceneReader, region: BaseGeometry | None = None) -> list[Tile]:
        """The scene's tiles that intersect ``region`` (EPSG:4326; ``None``: the whole scene).

        A basin-sized region (thousands of vertices) costs little per scene: it is first clipped to the
        scene's bounding box, so the exact work is on the few vertices near the scene.
        """
        height, width = reader.shape
        footprint = scene_footprint(reader.crs, reader.transform, width, height)
        near = None if region is None else shapely.clip_by_rect(region, *footprint.bounds)
        if near is not None and near.is_empty:
            return []
        if self.grid == NATIVE:
            grid = NativeGrid(reader.source.scene_id, reader.crs, tuple(reader.transform)[:6], width, height,
                              self.tile_size)
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
    if not zone.isdigit() or not 1 <= int(zone) <= 60 or hemisphere not in ("N", "S"):
        raise ValueError(f"--utm_zone {text!r}: write the zone number and N or S, e.g. 21S")
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
    group.add_argument("--band_order", help="source band roles, e.g. blue,green,red,nir (default: from colour "
                       "interpretation and band descriptions)")
    group.add_argument("--tiles_per_task", type=int, default=64, help="tiles read together from one open scene")
    group.add_argument("--cloud_mask", choices=masks.CLOUD_MASKS, default=masks.AUTO,
                       help="read each scene's UDM2 usable data mask for per-tile cloud, shadow and haze: auto "
                            "(when one lies beside the scene or in its STAC item), udm2 (a scene without one "
                            "fails), none (default auto)")


def from_args(args: argparse.Namespace, *, tile_size: int | None = None, zoom: int | None = None,
              cell_size: float | None = None, utm_zone: str | None = None,
              bands: Sequence[str] | None = None, min_clear_fraction: float | None = None) -> TileSpec:
    """A :class:`TileSpec` from parsed flags; the keyword arguments stand in for flags not given (the
    scan takes the tile size, cell size and bands from its bundle and the UTM zone from its AOI).
    ``min_clear_fraction`` skips tiles too cloudy by their UDM2: chip's flag of that name (the scans'
    and the report's flag of the same name is an analysis threshold and keeps every tile)."""
    return TileSpec(grid=args.grid, tile_size=tile_size or getattr(args, "tile_size", 256),
                    zoom=zoom if zoom is not None else args.zoom,
                    cell_size=(args.cell_size or cell_size) if args.grid == UTM else args.cell_size,
                    utm_zone=args.utm_zone or (utm_zone if args.grid == UTM else None),
                    min_valid_fraction=args.min_valid_fraction,
                    band_order=parse_band_order(args.band_order), bands=tuple(bands) if bands else None,
                    tiles_per_task=args.tiles_per_task, cloud_mask=args.cloud_mask,
                    min_clear_fraction=min_clear_fraction)
