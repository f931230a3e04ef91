"""Tile enumeration per scene with a basin-sized AOI: does a detailed polygon cost more than a box?

    python benchmarks/basin_enumeration.py [--vertices 20000] [--scenes 40]

A scan lists tiles on the workers, one scene at a time (the launcher holds only the list of scenes, so
its memory does not grow with the AOI's tile count). This measures that per-scene step,
:meth:`pipelines.geo.tiling.TileSpec.tiles`, for scenes along the ragged edge of a polygon of basin size
(about 2,800 km across, ``--vertices`` points) against (a) the polygon's bounding box and (b) the same
polygon intersected whole with each footprint, as the enumeration did before it clipped the AOI to the
scene first. Prints milliseconds per scene for each and basin/box (target: at most 2).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box

from pipelines.geo.tiling import TileSpec
from pipelines.sources import files
from pipelines.sources.reader import ReadOptions


def basin(vertices: int) -> Polygon:
    angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = 12.7 + 0.3 * np.sin(angle * 377)
    return Polygon(np.column_stack([-62.0 + radius * np.cos(angle), -4.0 + radius * np.sin(angle)]))


def edge_scenes(folder: str, count: int) -> list[str]:
    """Empty 2048-px 3 m scenes in UTM 22S along the polygon's eastern edge, one every 0.1 degree of latitude."""
    paths = []
    for i in range(count):
        path = f"{folder}/edge{i}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=2048, height=2048, count=3, dtype="uint8",
                           crs="EPSG:32722", transform=from_origin(685_000, 9_560_700 - i * 11_000, 3, 3)) as dst:
            dst.write(np.ones((3, 2048, 2048), np.uint8))
        paths.append(path)
    return paths


def per_scene_ms(spec: TileSpec, paths: list[str], region, clip: bool = True) -> tuple[float, int]:
    tiles, start = 0, time.perf_counter()
    for path in paths:
        with ReadOptions().open(files.item(path)) as reader:
            if clip:
                tiles += len(spec.tiles(reader.grid, region))
            else:  # the whole polygon intersected with the footprint, as before the clip
                area = reader.grid.footprint().intersection(region)
                tiles += len(spec.tiles(reader.grid, area)) if not area.is_empty else 0
    return (time.perf_counter() - start) * 1000 / len(paths), tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vertices", type=int, default=20_000)
    parser.add_argument("--scenes", type=int, default=40)
    args = parser.parse_args()
    region = basin(args.vertices)
    spec = TileSpec(grid="UTM", cell_size=3.0, utm_zone="20S")
    with tempfile.TemporaryDirectory() as folder:
        paths = edge_scenes(folder, args.scenes)
        per_scene_ms(spec, paths[:2], region)  # warm up: imports, PROJ database
        basin_ms, basin_tiles = per_scene_ms(spec, paths, region)
        box_ms, box_tiles = per_scene_ms(spec, paths, box(*region.bounds))
        whole_ms, whole_tiles = per_scene_ms(spec, paths, region, clip=False)
    assert whole_tiles == basin_tiles, "clipping must not change which tiles are found"
    print(f"{args.scenes} scenes, AOI of {args.vertices} vertices: {basin_tiles} tiles (box: {box_tiles})")
    print(f"per scene: basin {basin_ms:.1f} ms, bounding box {box_ms:.1f} ms, unclipped basin {whole_ms:.1f} ms")
    print(f"basin/box {basin_ms / box_ms:.2f} (target <= 2); unclipped/clipped {whole_ms / basin_ms:.2f}")


if __name__ == "__main__":
    main()
