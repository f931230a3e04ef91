"""Scan throughput: the scan pipeline against a plain loop of rasterio reads and ``predict_on_batch``.

    python benchmarks/scan_throughput.py [--rows 2 --cols 2 --size 4096] [--zoom 16] [--workdir DIR]

One run, same bundle (Inception V3 at 140 px, random weights: speed does not depend on what the weights
learned), same tiles of one AOI covering a mosaic of synthetic scenes:

(a) a plain loop: per scene, one WarpedVRT into the WebMercatorQuad grid, a windowed read per tile and
    of its UDM2 (nearest neighbour: the cloud fractions every scan row carries), tiles with less than
    half valid pixels dropped, ``model.predict_on_batch`` per batch of 64;
(b) the scan pipeline (FnApiRunner, default settings) end to end: launcher, enumeration, reads,
    RunInference, Parquet, the commit to the scans table.

Prints tiles/s of both and b/a. Target: b/a >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import rasterio
import scan_setup
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from pipelines.geo.grid import WebMercatorGrid, scene_footprint
from pipelines.sources import masks

BATCH = 64


def plain_loop(paths: list[str], region: shapely.Geometry, zoom: int, bundle: str) -> int:
    """Read and label every tile of ``region`` in ``paths``; return how many tiles were labelled."""
    from planet_model.bundle import load_model

    model = load_model(bundle)
    grid = WebMercatorGrid(zoom)
    done, batch = 0, []

    def flush() -> None:
        nonlocal done, batch
        if batch:
            model.predict_on_batch(np.stack(batch).astype(np.float32))
            done += len(batch)
            batch = []

    for path in paths:
        with rasterio.open(path) as src:
            footprint = scene_footprint(src.crs, src.transform, src.width, src.height)
            tiles = [grid.tile(x, y) for x, y in grid.tiles(footprint.intersection(region))]
            res, size = tiles[0].transform[0], tiles[0].size
            left = min(t.transform[2] for t in tiles)
            top = max(t.transform[5] for t in tiles)
            width = round((max(t.transform[2] for t in tiles) + size * res - left) / res)
            height = round((top - min(t.transform[5] for t in tiles) + size * res) / res)
            frame = dict(crs=tiles[0].crs, transform=Affine(res, 0, left, 0, -res, top), width=width, height=height)
            with (
                WarpedVRT(src, **frame, resampling=Resampling.bilinear) as vrt,
                rasterio.open(masks.find(path)) as udm2,
                WarpedVRT(udm2, **frame, resampling=Resampling.nearest) as mask,
            ):
                for tile in tiles:
                    col, row = round((tile.transform[2] - left) / res), round((top - tile.transform[5]) / res)
                    window = Window(col, row, size, size)
                    data = vrt.read([3, 2, 1], window=window)
                    valid = (data != 0).any(axis=0)
                    masks.Udm2.count(mask.read(list(masks.Udm2.bands), window=window), valid)
                    if valid.mean() >= 0.5:
                        batch.append(data.transpose(1, 2, 0))
                    if len(batch) == BATCH:
                        flush()
    flush()
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=2)
    parser.add_argument("--size", type=int, default=4096, help="scene size in px (3 m pixels)")
    parser.add_argument("--zoom", type=int, default=16)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    from pipelines import scan

    workdir = args.workdir or tempfile.mkdtemp(prefix="scan-bench-")
    t = time.perf_counter()
    paths = scan_setup.scenes(os.path.join(workdir, "scenes"), args.rows, args.cols, args.size)
    bundle = scan_setup.bundle(os.path.join(workdir, "bundle"))
    print(f"{len(paths)} scenes of {args.size} px and an Inception V3 bundle in {time.perf_counter() - t:.1f} s")
    footprints = []
    for path in paths:
        with rasterio.open(path) as src:
            footprints.append(scene_footprint(src.crs, src.transform, src.width, src.height))
    region = shapely.union_all(footprints).buffer(-0.002)

    t = time.perf_counter()
    plain_tiles = plain_loop(paths, region, args.zoom, bundle)
    plain = plain_tiles / (time.perf_counter() - t)

    t = time.perf_counter()
    manifest = scan.run(
        [
            "--aoi=" + ",".join(f"{v:.6f}" for v in region.bounds),
            "--aoi_name",
            "bench",
            "--scenes",
            *paths,
            "--bundle",
            bundle,
            "--output",
            os.path.join(workdir, "scan"),
            "--scan_date",
            "2026-01-01",
            "--grid",
            "WebMercatorQuad",
            "--zoom",
            str(args.zoom),
            "--batch_size",
            str(BATCH),
        ]
    )
    piped = manifest["inferred"] / (time.perf_counter() - t)

    print(f"tiles: (a) {plain_tiles}, (b) {manifest['inferred']} inferred of {manifest['enumerated']} enumerated")
    print(f"(a) plain reads + predict_on_batch: {plain:8.1f} tiles/s")
    print(f"(b) scan pipeline:                  {piped:8.1f} tiles/s")
    print(f"ratio b/a:                          {piped / plain:8.2f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
