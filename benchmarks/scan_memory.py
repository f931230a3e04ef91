"""Scan memory: peak resident memory of the scan for an AOI and for one with 4x the tiles, in one run.

    python benchmarks/scan_memory.py [--rows 2 --cols 2 --size 2048] [--zoom 16] [--workdir DIR]

Synthesises a ``2*rows x 2*cols`` mosaic; the small AOI covers its first ``rows x cols`` scenes, the
large one all of them (4x the tiles). Each scan runs in its own process (FnApiRunner, default
settings, Inception V3 bundle at 140 px) and reports its peak RSS (``ru_maxrss`` of the process and
any worker processes). Prints both and large/small. Target: <= 1.25 (memory must not grow with the AOI).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import rasterio
import scan_setup
import shapely

from pipelines.geo.grid import scene_footprint

CHILD = """
import json, resource, sys
from pipelines import scan
manifest = scan.run(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("RESULT " + json.dumps({"peak_mb": peak / 1024, "inferred": manifest["inferred"]}))
"""


def measure(paths: list[str], bundle: str, output: str, zoom: int) -> dict:
    footprints = []
    for path in paths:
        with rasterio.open(path) as src:
            footprints.append(scene_footprint(src.crs, src.transform, src.width, src.height))
    bounds = shapely.union_all(footprints).buffer(-0.002).bounds
    args = [
        "--aoi=" + ",".join(f"{v:.6f}" for v in bounds),
        "--aoi_name",
        "bench",
        "--scenes",
        *paths,
        "--bundle",
        bundle,
        "--output",
        output,
        "--scan_date",
        "2026-01-01",
        "--grid",
        "WebMercatorQuad",
        "--zoom",
        str(zoom),
    ]
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT "):]), "seconds": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--zoom", type=int, default=16)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="scan-memory-")
    paths = scan_setup.scenes(os.path.join(workdir, "scenes"), 2 * args.rows, 2 * args.cols, args.size)
    small = [p for i, p in enumerate(paths) if i // (2 * args.cols) < args.rows and i % (2 * args.cols) < args.cols]
    bundle = scan_setup.bundle(os.path.join(workdir, "bundle"))

    a = measure(small, bundle, os.path.join(workdir, "small"), args.zoom)
    b = measure(paths, bundle, os.path.join(workdir, "large"), args.zoom)
    print(
        f"AOI:    {len(small):3d} scenes, {a['inferred']:6d} tiles, peak RSS {a['peak_mb']:7.0f} MB "
        f"({a['seconds']:.0f} s)"
    )
    print(
        f"4x AOI: {len(paths):3d} scenes, {b['inferred']:6d} tiles, peak RSS {b['peak_mb']:7.0f} MB "
        f"({b['seconds']:.0f} s)"
    )
    print(f"tiles ratio {b['inferred'] / a['inferred']:.2f}; memory ratio 4x/1x: {b['peak_mb'] / a['peak_mb']:.2f}  "
          "(target <= 1.25)")


if __name__ == "__main__":
    main()
