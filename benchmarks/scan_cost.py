"""What a scan costs: tiles and km2 per hour, dollars per 1,000 km2 and per scan of the Brazilian Legal Amazon.

    python benchmarks/scan_cost.py [--rows 2 --cols 2 --size 2048] [--workdir DIR]

Measured here, side by side in one run, on cloud-free synthetic scenes scanned on the default grid
(UTM, 3 m, 256-px tiles):

- the scan pipeline's tiles/s with an Inception V3 bundle at 140 px and with the simple CNN at 64 px
  (random weights: speed does not depend on them), as a marginal rate (a scan of one scene and one of
  all the scenes: the extra tiles over the extra time, so start-up does not count, as it does not on a
  long job), divided by this machine's cores for a per-vCPU rate (TensorFlow uses every core);
- the tile read rate alone (windowed reads and warps, one core), which bounds a GPU worker: its GPU
  labels far faster than its vCPUs can read.

Prices are dated constants (:data:`PRICES`): list prices, us-central1, Dataflow batch workers. Check
them against Google's Dataflow and GPU pricing pages before budgeting. No L4 was at hand, so the GPU
worker's rate is its 8 vCPUs' read rate, capped by :data:`L4_INCEPTION_TILES_S`: the model's inference
rate measured on an H200 with ``model_throughput.py``, scaled to an L4 by the two cards' published
float16 throughput (say so where you quote it). Prints a table; the last line is the Legal Amazon cost
per scan on CPU and on GPU workers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import rasterio
import scan_setup
import shapely

from pipelines import scan
from pipelines.geo.grid import scene_footprint
from pipelines.geo.tiling import TileSpec
from pipelines.sources import files
from pipelines.sources.reader import ReadOptions

#: List prices (USD), us-central1, as published by Google for Dataflow batch workers and Compute Engine
#: GPUs in 2025; read 2026-11-25. Dataflow bills worker vCPU and memory at its own rates, and GPUs on top.
PRICES = {"vcpu_hour": 0.056, "gb_hour": 0.003557, "l4_gpu_hour": 0.56, "as_of": "2025 list prices, read 2026-11-25"}
CPU_WORKER = {"name": "n1-standard-4", "vcpus": 4, "memory_gb": 15.0}
GPU_WORKER = {"name": "g2-standard-8 + 1 NVIDIA L4", "vcpus": 8, "memory_gb": 32.0}
#: Inception V3 at 140 px labelled 23,559 tiles/s on an NVIDIA H200 (``model_throughput.py``, mixed
#: float16, batch 128, JAX backend, 2026-11-26). Scaled by the cards' dense float16 tensor throughput in
#: NVIDIA's data sheets (L4 121 TFLOP/s, H200 989): about 2,900 tiles/s on an L4. Scaled by memory
#: bandwidth instead (300 GB/s against 4.8 TB/s) it would be about 1,500: an estimate, not a measurement.
L4_INCEPTION_TILES_S = 2900.0
TILE_KM2 = (256 * 3.0 / 1000) ** 2  # a 256-px tile of 3 m pixels
LEGAL_AMAZON_KM2 = 5_000_000


def timed_scan(paths: list[str], region: shapely.Geometry, bundle: str, out: str) -> tuple[float, int]:
    start = time.perf_counter()
    manifest = scan.run(["--aoi=" + ",".join(f"{v:.6f}" for v in region.bounds), "--aoi_name", "cost",
                         "--scenes", *paths, "--bundle", bundle, "--output", out, "--scan_date", "2026-01-01"])
    return time.perf_counter() - start, manifest["inferred"]


def scan_rate(paths: list[str], region: shapely.Geometry, bundle: str, out: str) -> tuple[float, int]:
    """Marginal tiles/s: the scan of every scene against the scan of the first one."""
    one_s, one_tiles = timed_scan(paths[:1], region, bundle, out + "-one")
    all_s, all_tiles = timed_scan(paths, region, bundle, out + "-all")
    return (all_tiles - one_tiles) / (all_s - one_s), all_tiles


def read_rate(paths: list[str], region: shapely.Geometry) -> float:
    spec, read = TileSpec(grid="UTM", cell_size=3.0), ReadOptions(bands=("red", "green", "blue"))
    count, start = 0, time.perf_counter()
    for path in paths:
        with read.open(files.item(path)) as reader:
            count += sum(1 for _ in reader.read_tiles(spec.tiles(reader.grid, region)))
    return count / (time.perf_counter() - start)


def worker_cost(worker: dict, gpu: bool = False) -> float:
    hourly = worker["vcpus"] * PRICES["vcpu_hour"] + worker["memory_gb"] * PRICES["gb_hour"]
    return hourly + (PRICES["l4_gpu_hour"] if gpu else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="scan-cost-")
    paths = scan_setup.scenes(os.path.join(work, "scenes"), args.rows, args.cols, args.size)
    footprints = []
    for path in paths:
        with rasterio.open(path) as src:
            footprints.append(scene_footprint(src.crs, src.transform, src.width, src.height))
    region = shapely.union_all(footprints).buffer(-0.002)
    cores = os.cpu_count() or 1
    reads = read_rate(paths, region)
    rows = []
    for name, arch, size in (("Inception V3, 140 px", "inception_v3", 140), ("simple CNN, 64 px", "simple_cnn", 64)):
        bundle = scan_setup.bundle(os.path.join(work, f"bundle-{arch}"), arch=arch, input_size=size)
        rate, tiles = scan_rate(paths, region, bundle, os.path.join(work, f"scans-{arch}"))
        per_vcpu = rate / cores
        cpu_tiles_hour = per_vcpu * CPU_WORKER["vcpus"] * 3600
        rows.append((f"{name}, {CPU_WORKER['name']}", rate, per_vcpu, cpu_tiles_hour, worker_cost(CPU_WORKER), tiles))
        if arch == "inception_v3":
            gpu_rate = min(reads * GPU_WORKER["vcpus"], L4_INCEPTION_TILES_S)
            rows.append((f"{name}, {GPU_WORKER['name']} (estimate)", None, None, gpu_rate * 3600,
                         worker_cost(GPU_WORKER, gpu=True), tiles))
    print(f"prices: {PRICES}; a tile is {TILE_KM2:.3f} km2; this machine: {cores} cores; "
          f"tile reads alone {reads:.0f} tiles/s on one core")
    print(f"{'scan':<52} {'tiles/s here':>12} {'/vCPU':>7} {'km2/worker-h':>13} {'$/worker-h':>10} "
          f"{'$/1000 km2':>10} {'$ Legal Amazon':>15}")
    for name, rate, per_vcpu, tiles_hour, hourly, _ in rows:
        per_1000 = 1000 / TILE_KM2 / tiles_hour * hourly
        measured = f"{rate:>12.1f} {per_vcpu:>7.1f}" if rate else f"{'-':>12} {'-':>7}"
        print(f"{name:<52} {measured} {tiles_hour * TILE_KM2:>13.0f} {hourly:>10.3f} "
              f"{per_1000:>10.4f} {per_1000 * LEGAL_AMAZON_KM2 / 1000:>15.0f}")
    cpu, gpu = rows[0], rows[1]
    cost = lambda r: 1000 / TILE_KM2 / r[3] * r[4] * LEGAL_AMAZON_KM2 / 1000  # noqa: E731
    print(
        f"Legal Amazon ({LEGAL_AMAZON_KM2:,} km2, {LEGAL_AMAZON_KM2 / TILE_KM2:,.0f} tiles) per scan with "
        "Inception V3: "
        f"${cost(cpu):,.0f} on CPU workers, ${cost(gpu):,.0f} on L4 GPU workers (estimate)"
    )


if __name__ == "__main__":
    main()
