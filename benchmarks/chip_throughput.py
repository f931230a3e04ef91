"""Chipping throughput: the pipeline against a plain loop of rasterio windowed reads, in one run.

    python benchmarks/chip_throughput.py [--size 8192] [--repeats 3] [--workdir DIR]

Generates one synthetic scene of (size/256)^2 chips (8192 px: 1024 chips; kept in ``--workdir`` for the
next run), then times, side by side and ``--repeats`` times in turn, reporting each one's median:
(a) a plain loop reading every 256-px window with rasterio; (a+w) the same reads with each window's bytes
written as a TFRecord-framed record (Beam's own framing: length, CRCs) to one file, fsync'd at the end,
in one process: what chipping cannot beat, reading and writing its bytes; (b) the chipping pipeline with
default settings (FnApiRunner, uncompressed TFRecords), whole runs from the command's start: planning and
building the pipeline included; and (f) the same run on a one-chip scene, the cost of any run, which a
job of many scenes pays once. Prints chips/s of each, MB written per chip, b/a, (b-f)/(a+w) and, last,
b/(a+w).
Target (issue 30): b/(a+w) >= 0.9 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import tempfile
import time

import rasterio
from rasterio.windows import Window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    from apache_beam.io.tfrecordio import _TFRecordUtil

    from pipelines import chip
    from pipelines.sources import synthetic

    workdir = args.workdir or tempfile.mkdtemp(prefix="chip-bench-")
    spec = synthetic.SceneSpec(seed=42, width=args.size, height=args.size, cloud_probability=0.0)
    scene = os.path.join(workdir, "scene", f"{spec.scene_id}.tif")
    if not os.path.exists(scene):
        t = time.perf_counter()
        scene = synthetic.write_scene(spec, os.path.join(workdir, "scene"))["scene"]
        print(f"scene: {scene} ({time.perf_counter() - t:.1f} s to synthesise)")
    n = (args.size // 256) ** 2
    one_spec = synthetic.SceneSpec(seed=42, width=256, height=256, cloud_probability=0.0)
    one_chip = os.path.join(workdir, "one", f"{one_spec.scene_id}.tif")
    if not os.path.exists(one_chip):
        synthetic.write_scene(one_spec, os.path.join(workdir, "one"))

    def plain() -> None:
        with rasterio.open(scene) as src:
            for row in range(0, args.size, 256):
                for col in range(0, args.size, 256):
                    src.read(window=Window(col, row, 256, 256))

    def read_write() -> None:
        with rasterio.open(scene) as src, open(os.path.join(workdir, "baseline.tfrecord"), "wb") as out:
            for row in range(0, args.size, 256):
                for col in range(0, args.size, 256):
                    _TFRecordUtil.write_record(out, src.read(window=Window(col, row, 256, 256)).tobytes())
            out.flush()
            os.fsync(out.fileno())

    out = os.path.join(workdir, "chips")

    def piped() -> None:
        shutil.rmtree(out, ignore_errors=True)
        manifest = chip.run(["--scenes", scene, "--output", out])
        assert manifest["written"] == n, manifest

    def fixed() -> None:
        shutil.rmtree(out + "-one", ignore_errors=True)
        chip.run(["--scenes", one_chip, "--output", out + "-one"])

    runs: dict = {plain: [], read_write: [], piped: [], fixed: []}
    for _ in range(args.repeats):
        for step, times in runs.items():
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    fixed_s = statistics.median(runs.pop(fixed))
    plain, read_write, piped = (n / statistics.median(times) for times in runs.values())
    steady = n / (n / piped - fixed_s)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "**", "chips-*"), recursive=True)) / 1e6

    print(f"chips: {n}")
    print(f"(a) plain windowed reads:        {plain:8.1f} chips/s")
    print(f"(a+w) reads + records written:   {read_write:8.1f} chips/s")
    print(f"(b) chipping pipeline:           {piped:8.1f} chips/s")
    print(f"(f) one-chip run (fixed cost):   {fixed_s:8.2f} s")
    print(f"(b-f) pipeline past its fixed cost: {steady:5.1f} chips/s")
    print(f"MB written per chip:             {size / n:8.3f}")
    print(f"ratio (b-f)/(a+w):               {steady / read_write:8.2f}")
    print(f"ratio b/a:                       {piped / plain:8.2f}")
    print(f"ratio b/(a+w):                   {piped / read_write:8.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
