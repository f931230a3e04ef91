"""The report at basin scale: time and peak memory of ``planet-tiles report`` against the alerts query alone.

    python benchmarks/report_scale.py [--tiles 313000] [--dates 3] [--scales 1,4] [--work /tmp/report_scale]

Builds synthetic scan output in the scans' real layout and schema (WebMercatorQuad z16 tiles over a
square, ``--dates`` scan dates; each date 15 % cloudy tiles, 2 % of the tiles cleared for good from the
second date on, fields confirmed on later dates), then runs, each in a fresh process and one after the
other: the alerts query in DuckDB (``planet-tiles query alerts``) and ``planet-tiles report`` (no
pictures: the synthetic rows have no scenes). It prints wall time and peak RSS of both and their ratios
(targets: report time at most 2x the query's, report memory under 2 GB), at each scale, and the report
page's size (target: under 25 MB whatever the AOI).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.analysis import schema  # noqa: E402
from planet_model.labels import LABELS  # noqa: E402

ZOOM = 16
X0, Y0 = 22000, 34000  # about 59 W, 7 S


def build(folder: Path, tiles: int, dates: int, seed: int = 0) -> int:
    """Scan Parquet for ``tiles`` tiles on ``dates`` dates; returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    side = math.ceil(math.sqrt(tiles))
    index = np.arange(tiles)
    x, y = X0 + index % side, Y0 + index // side
    n = 2.0 ** ZOOM
    west, east = x / n * 360 - 180, (x + 1) / n * 360 - 180
    north = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * y / n))))
    south = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y + 1) / n))))
    geometry = shapely.to_wkb(shapely.box(west, south, east, north))
    area = (611.5 ** 2) * np.cos(np.radians((north + south) / 2)) ** 2
    tile_ids = np.array([f"WebMercatorQuad/{ZOOM}/{a}/{b}" for a, b in zip(x, y)], dtype=object)
    rng = np.random.default_rng(seed)
    cleared = rng.random(tiles) < 0.02
    start = dt.date(2026, 6, 1)
    written = 0
    for d in range(dates):
        date = start + dt.timedelta(days=14 * d)
        cloudy = rng.random(tiles) < 0.15
        fields = cleared & (d > 0)
        probabilities = {name: rng.random(tiles).astype(np.float32) * 0.1 for name in LABELS}
        probabilities["primary"] = np.full(tiles, 0.95, np.float32)
        probabilities["clear"] = np.where(cloudy, 0.05, 0.95).astype(np.float32)
        probabilities["cloudy"] = np.where(cloudy, 0.95, 0.05).astype(np.float32)
        probabilities["agriculture"] = np.where(fields, 0.93, 0.05).astype(np.float32)
        labels = [["cloudy"] if c else (["clear", "primary", "agriculture"] if f else ["clear", "primary"])
                  for c, f in zip(cloudy, fields)]
        columns = {
            "tile_id": tile_ids, "scene_id": np.full(tiles, f"scene-{date}", dtype=object),
            "scan_id": np.full(tiles, f"basin:{date}:bench", dtype=object),
            "acquired": pa.array([dt.datetime(date.year, date.month, date.day, 13, 30, tzinfo=dt.timezone.utc)] * tiles,
                                 pa.timestamp("us", tz="UTC")),
            "geometry": geometry, "lon": (west + east) / 2, "lat": (north + south) / 2, "area_m2": area,
            "valid_fraction": np.ones(tiles, np.float32),
            "clear_fraction": pa.nulls(tiles, pa.float32()), "cloud_fraction": pa.nulls(tiles, pa.float32()),
            "shadow_fraction": pa.nulls(tiles, pa.float32()), "haze_fraction": pa.nulls(tiles, pa.float32()),
            **{f"p_{name}": probabilities[name] for name in LABELS},
            "labels": labels, "model_version": np.full(tiles, "bench", dtype=object),
        }
        table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
        part = folder / f"scan_date={date.isoformat()}" / "aoi=basin"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, part / "part-bench-00000.parquet", row_group_size=131072)
        written += tiles
    return written


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``command`` run in a fresh process (output thrown away)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
             "assert done.returncode == 0, done.stderr[-2000:]; "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    seconds, kb = out.stdout.split()
    return float(seconds), int(kb) / 1024 / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiles", type=int, default=313_000)
    p.add_argument("--dates", type=int, default=3)
    p.add_argument("--scales", default="1,4")
    p.add_argument("--work", default="/tmp/report_scale")
    args = p.parse_args()
    cli = str(Path(sys.executable).with_name("planet-tiles"))
    results = []
    for scale in (int(s) for s in args.scales.split(",")):
        folder = Path(args.work) / f"x{scale}"
        scans = folder / "scans"
        if not scans.exists():
            t = time.perf_counter()
            rows = build(scans, args.tiles * scale, args.dates)
            print(f"x{scale}: built {rows:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
        rows = args.tiles * scale * args.dates
        end = (dt.date(2026, 6, 1) + dt.timedelta(days=14 * (args.dates - 1))).isoformat()
        query = measure([cli, "query", "alerts", "--scans", str(scans), "--param", "start_date=2026-06-01",
                         "--param", f"end_date={end}"])
        page = measure([cli, "report", "--scans", str(scans), "--output", str(folder / "report"), "--no_images"])
        size = os.path.getsize(folder / "report" / "report.html") / 1e6
        summary = json.loads((folder / "report" / "summary.json").read_text())
        results.append((scale, rows, query, page, size, summary))
        print(f"x{scale}: {rows:,} rows, {summary['alerts']:,} alerts in {summary['events']:,} events | "
              f"alerts query {query[0]:.1f} s, {query[1]:.2f} GB | report {page[0]:.1f} s, {page[1]:.2f} GB, "
              f"report.html {size:.1f} MB | report/query time {page[0] / query[0]:.2f}x (target <= 2), "
              f"memory {page[1] / query[1]:.2f}x", flush=True)
    if len(results) > 1:
        (_, r0, _, p0, _, _), (_, r1, _, p1, _, _) = results[0], results[-1]
        print(f"rows x{r1 / r0:.0f}: report time x{p1[0] / p0[0]:.2f}, report peak memory x{p1[1] / p0[1]:.2f}")


if __name__ == "__main__":
    main()
