"""Chipping throughput: the pipeline against a plain loop of rasterio windowed reads, in one run.

    python benchmarks/chip_throughput.py [--size 8192] [--workdir DIR]

Generates one synthetic scene of (size/256)^2 chips (8192 px: 1024 chips), then times
(a) a plain loop reading every 256-px window with rasterio and (b) the chipping pipeline with default
settings (FnApiRunner, uncompressed TFRecords). Prints chips/s of each, MB written per chip and b/a.
Target: b/a >= 0.5 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

import rasterio
from rasterio.windows import Window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    from pipelines import chip
    from pipelines.sources import synthetic

    workdir = args.workdir or tempfile.mkdtemp(prefix="chip-bench-")
    spec = synthetic.SceneSpec(seed=42, width=args.size, height=args.size, cloud_probability=0.0)
    t = time.perf_counter()
    scene = synthetic.write_scene(spec, os.path.join(workdir, "scene"))["scene"]
    print(f"scene: {scene} ({time.perf_counter() - t:.1f} s to synthesise)")
    n = (args.size // 256) ** 2

    t = time.perf_counter()
    with rasterio.open(scene) as src:
        for row in range(0, args.size, 256):
            for col in range(0, args.size, 256):
                src.read(window=Window(col, row, 256, 256))
    plain = n / (time.perf_counter() - t)

    out = os.path.join(workdir, "chips")
    t = time.perf_counter()
    manifest = chip.run(["--scenes", scene, "--output", out])
    piped = n / (time.perf_counter() - t)
    assert manifest["written"] == n, manifest
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "chips-*"))) / 1e6

    print(f"chips: {n}")
    print(f"(a) plain windowed reads: {plain:8.1f} chips/s")
    print(f"(b) chipping pipeline:    {piped:8.1f} chips/s")
    print(f"MB written per chip:      {size / n:8.3f}")
    print(f"ratio b/a:                {piped / plain:8.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
