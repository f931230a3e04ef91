"""Concurrent scans of one partition, many times over: is there always exactly one complete output?

    python benchmarks/concurrent_scans.py [--tries 50] [--workdir DIR]

Each try starts two ``planet-tiles scan`` processes of the same scan date and AOI at the same moment
(a scheduler firing twice, an analyst re-running by hand) on one synthetic scene with a small untrained
bundle, waits for both, and checks what a reader sees in the scans table's current snapshot: the rows of
exactly one of the two runs, all of them (its commit's count), each tile once. Prints one line per try
and the number of tries whose output was lost (no rows), doubled (more rows than one run wrote, or a
tile twice) or torn (rows of both runs), target 0 each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import rasterio
import rasterio.warp
import scan_setup

from pipelines.store import scans
from pipelines.store.catalog import Warehouse

DATE, AOI = "2026-01-01", "race"


def one_try(scene: str, bundle: str, out: Path) -> tuple[str, str]:
    """(outcome, what was seen): outcome is ok, lost, doubled, torn or failed."""
    with rasterio.open(scene) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    command = [sys.executable, "-m", "pipelines.cli", "scan", f"--aoi={west},{south},{east},{north}", "--aoi_name",
               AOI, "--scenes", scene, "--bundle", bundle, "--output", str(out), "--scan_date", DATE]
    runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [run.wait() for run in runs]
    if codes != [0, 0]:
        return "failed", f"exit codes {codes}: {runs[0].stderr.read()[-300:]}"
    warehouse = Warehouse(str(out))
    rows = scans.read_arrow(warehouse, AOI).to_pylist()
    commit = scans.commits(warehouse)[0]
    runs_seen = {path.rsplit("/", 1)[1].split("-00000")[0] for path in scans.snapshot(warehouse, AOI).files}
    tiles = Counter((r["tile_id"], r["scene_id"]) for r in rows)
    if not rows:
        return "lost", "no rows"
    if len(runs_seen) > 1:
        return "torn", f"files of {len(runs_seen)} runs"
    if len(rows) != commit.facts["inferred"] or max(tiles.values()) > 1:
        return "doubled", f"{len(rows)} rows for {commit.facts['inferred']} inferred"
    return "ok", f"{len(rows)} rows from run {commit.facts['run_id']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="concurrent-scans-"))
    [scene] = scan_setup.scenes(str(work / "scenes"), 1, 1, 1024)
    bundle = scan_setup.bundle(str(work / "bundle"), arch="simple_cnn", input_size=64)
    counts = Counter()
    for i in range(args.tries):
        outcome, seen = one_try(scene, bundle, work / "scans")
        counts[outcome] += 1
        print(f"try {i + 1}: {outcome}: {seen}", flush=True)
    print(f"{args.tries} tries of two concurrent scans of one partition: {counts['lost']} lost, {counts['doubled']} "
          f"doubled, {counts['torn']} torn, {counts['failed']} failed (target 0 each); "
          f"{len(scans.commits(Warehouse(str(work / 'scans'))))} commits in the table's history")


if __name__ == "__main__":
    main()
