"""Concurrent scans of one partition, many times over: is there always exactly one complete output?

    python benchmarks/concurrent_scans.py [--tries 20] [--workdir DIR]

Each try starts two ``planet-tiles scan`` processes of the same scan date and AOI at the same moment
(a scheduler firing twice, an analyst re-running by hand) on one synthetic scene with a small untrained
bundle, waits for both, and checks what a reader sees: the partition must hold exactly the files its
manifest lists, each present, and ``read_parquet('**/*.parquet')`` must count the manifest's rows. Prints
one line per try and the number of tries in which the output was lost, doubled or torn (target: 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import rasterio
import rasterio.warp

import scan_setup
from pipelines.analysis import layout

DATE, AOI = "2026-01-01", "race"


def one_try(scene: str, bundle: str, out: Path) -> str:
    with rasterio.open(scene) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    command = [sys.executable, "-m", "pipelines.cli", "scan", f"--aoi={west},{south},{east},{north}", "--aoi_name",
               AOI, "--scenes", scene, "--bundle", bundle, "--output", str(out), "--scan_date", DATE]
    runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [run.wait() for run in runs]
    if codes != [0, 0]:
        return f"exit codes {codes}: {runs[0].stderr.read()[-300:]}"
    partition = Path(layout.partition(str(out), DATE, AOI))
    manifest = json.loads((partition / layout.MANIFEST).read_text())
    listed = sorted(str(partition / f) for f in manifest["files"] if f.endswith(".parquet"))
    present = sorted(str(p) for p in partition.glob("part-*.parquet"))
    rows = duckdb.connect().sql(f"select count(*) from read_parquet('{out}/**/*.parquet')").fetchall()[0][0]
    if present != listed or rows != manifest["inferred"] or not rows:
        return f"LOST OR DOUBLED: {len(present)} files for {len(listed)} listed, {rows} rows for {manifest['inferred']}"
    return f"ok: {rows} rows from run {manifest['run_id']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="concurrent-scans-"))
    [scene] = scan_setup.scenes(str(work / "scenes"), 1, 1, 1024)
    bundle = scan_setup.bundle(str(work / "bundle"), arch="simple_cnn", input_size=64)
    bad = 0
    for i in range(args.tries):
        result = one_try(scene, bundle, work / "scans")
        bad += not result.startswith("ok")
        print(f"try {i + 1}: {result}", flush=True)
    print(f"{args.tries} tries of two concurrent scans of one partition: {bad} lost, doubled or torn outputs")


if __name__ == "__main__":
    main()
