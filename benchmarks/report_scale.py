"""The report at basin scale, read through the scans table: time and peak memory of ``planet-tiles report``
and of ``planet-tiles query alerts`` against the same alerts query on the bare Parquet files.

    python benchmarks/report_scale.py [--tiles 313000] [--dates 3] [--scales 1,4] [--utm_events 16000]
                                      [--work /tmp/report_scale] [--commit_files 10000]

Builds synthetic scans in the scans table, ``--dates`` scan dates 14 days apart, one commit each; each date
15 % cloudy tiles, some tiles cleared for good from the second date on (fields confirmed on later dates):

* at each of ``--scales``, one contiguous block of ``--tiles`` x scale WebMercatorQuad z16 tiles, 2 % of
  them cleared (939,000 rows at scale 1: few, large events);
* ``--utm_events`` blocks of 4 x 4 UTM tiles scattered over the Legal Amazon with 2 x 2 of each cleared:
  as real scans are, UTM tiles whose outlines carry the densified edges of their reprojection, and many
  events far apart (16,000 blocks: 768,000 rows).

On each set it runs, each in a fresh process and one after the other: the alerts query in DuckDB on the
bare data files (no catalog, no snapshot: the floor), ``planet-tiles query alerts`` (the current snapshot,
through the catalog), the report's work on the bare data files, and ``planet-tiles report`` (no pictures:
the synthetic rows have no scenes). It prints wall time and peak RSS of each and their ratios, with the
targets: the query and the report through the table at most 1.2x the same on the bare files; the report
at most 1.25x ``query alerts`` and under 1.5 GB; the page under 25 MB whatever the AOI. Last come how the
report's time and memory grew between the first and last scale, and the time of one commit that replaces
a partition with ``--commit_files`` data files.
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

from shapely.geometry import Point

from pipelines.analysis import queries
from pipelines.geo.grid import GEOD
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import publishing, storage
from planet_core.labels import LABELS

ZOOM = 16
X0, Y0 = 22000, 34000  # about 59 W, 7 S


def build(folder: Path, tiles: int, dates: int, seed: int = 0) -> int:
    """Scans of ``tiles`` tiles on ``dates`` dates, committed to the table in ``folder``; returns the rows."""
    import shapely

    side = math.ceil(math.sqrt(tiles))
    index = np.arange(tiles)
    x, y = X0 + index % side, Y0 + index // side
    n = 2.0 ** ZOOM
    west, east = x / n * 360 - 180, (x + 1) / n * 360 - 180
    north = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * y / n))))
    south = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y + 1) / n))))
    outlines = shapely.box(west, south, east, north)
    area = (611.5 ** 2) * np.cos(np.radians((north + south) / 2)) ** 2
    tile_ids = np.array([f"WebMercatorQuad/{ZOOM}/{a}/{b}" for a, b in zip(x, y)], dtype=object)
    rng = np.random.default_rng(seed)
    return commit_dates(Warehouse(str(folder)), "basin", tile_ids, outlines, area, rng.random(tiles) < 0.02, dates,
                        rng)


def build_utm(folder: Path, clusters: int, dates: int, seed: int = 0) -> int:
    """Scans of ``clusters`` blocks of 4 x 4 UTM tiles (3 m, 768 m a side, outlines as the scan writes them:
    reprojected with densified edges) scattered over the Legal Amazon, far apart, 2 x 2 tiles of each
    cleared for good from the second date on: as many events as clusters. Returns the rows."""
    from pipelines.geo.grid import UtmGrid

    rng = np.random.default_rng(seed)
    lons, lats = rng.uniform(-73, -45, clusters), rng.uniform(-17, 4, clusters)
    seen: dict[str, tuple] = {}
    for lon, lat, corner in zip(lons, lats, rng.integers(0, 3, (clusters, 2))):
        grid = UtmGrid(int((lon + 180) // 6) + 1, bool(lat < 0), 3.0)
        col, row = grid.tiles(Point(lon, lat).buffer(1e-7))[0]
        for dc in range(4):
            for dr in range(4):
                tile = grid.tile(col + dc, row + dr)
                cleared = corner[0] <= dc <= corner[0] + 1 and corner[1] <= dr <= corner[1] + 1
                seen.setdefault(tile.tile_id, (tile.polygon_wgs84(), cleared))
    tile_ids = np.array(list(seen), dtype=object)
    outlines = np.array([outline for outline, _ in seen.values()], dtype=object)
    cleared = np.array([c for _, c in seen.values()])
    area = np.array([abs(GEOD.geometry_area_perimeter(o)[0]) for o in outlines])
    return commit_dates(Warehouse(str(folder)), "amazon", tile_ids, outlines, area, cleared, dates, rng)


def commit_dates(warehouse: Warehouse, aoi: str, tile_ids: np.ndarray, outlines: np.ndarray, area: np.ndarray,
                 cleared: np.ndarray, dates: int, rng: np.random.Generator) -> int:
    """Commit one scan of the tiles per date, 14 days apart: 15 % cloudy on each date, the ``cleared`` tiles
    fields from the second date on (confirmed on the later ones). Returns the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    tiles = len(tile_ids)
    geometry = shapely.to_wkb(outlines)
    west, south, east, north = shapely.bounds(outlines).T
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
            "scan_id": np.full(tiles, f"{aoi}:{date}:bench", dtype=object),
            "acquired": pa.array([dt.datetime(date.year, date.month, date.day, 13, 30, tzinfo=dt.timezone.utc)] * tiles,
                                 pa.timestamp("us", tz="UTC")),
            "geometry": geometry, "lon": (west + east) / 2, "lat": (north + south) / 2, "area_m2": area,
            "valid_fraction": np.ones(tiles, np.float32),
            "clear_fraction": pa.nulls(tiles, pa.float32()), "cloud_fraction": pa.nulls(tiles, pa.float32()),
            "shadow_fraction": pa.nulls(tiles, pa.float32()), "haze_fraction": pa.nulls(tiles, pa.float32()),
            **{f"p_{name}": probabilities[name] for name in LABELS},
            "labels": labels, "model_version": np.full(tiles, "bench", dtype=object),
            "scene_uri": np.full(tiles, f"/scenes/scene-{date}.tif", dtype=object),
            "bbox": pa.StructArray.from_arrays([pa.array(v) for v in (west, south, east, north)], schema.BBOX_FIELDS),
            "mask_status": np.full(tiles, schema.MASK_ABSENT, dtype=object),
            "aoi": np.full(tiles, aoi, dtype=object), "scan_date": pa.array([date] * tiles, pa.date32()),
        }
        table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
        path = storage.join(scans.data_folder(warehouse, date.isoformat(), aoi), "part-bench.parquet")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pq.write_table(table, path, row_group_size=131072, compression=schema.COMPRESSION)
        scans.replace_partition(warehouse, date.isoformat(), aoi, [path],
                                {"run_id": f"bench-{date}", "partitions": [f"{date.isoformat()}/{aoi}"]})
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


def bare_query(files: list[str], end: str) -> None:
    """The alerts query on the data files themselves, read by DuckDB with no catalog (the floor the table's
    reading is measured against); its rows written as ``query`` writes them, to /dev/null."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'; SET preserve_insertion_order = false; SET enable_progress_bar = false")
    con.execute(f"CREATE SCHEMA {queries.DATASET}")
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(f"CREATE VIEW {queries.DATASET}.tile_labels AS SELECT * FROM read_parquet([{listed}])")
    queries.create_view(con, "observations")
    params = {**queries.DEFAULTS, "start_date": dt.date(2026, 6, 1), "end_date": dt.date.fromisoformat(end)}
    with open(os.devnull, "w") as out:
        for batch in queries.batches(con, "alerts", params):
            out.write("".join(f"{line}\n" for line in queries.json_lines(batch)))


def bare_report(files: list[str], warehouse: str, output: str) -> None:
    """The report's own work on the data files themselves (no snapshot read from the catalog), into
    ``output`` (the model card's bundle is still looked up in ``warehouse``'s commits, as the report does)."""
    from pipelines.analysis import report

    args = report.build_parser().parse_args(["--scans", warehouse, "--output", output, "--no_images"])
    snapshot = scans.Snapshot(Warehouse(warehouse), None, None, tuple(files), False, None)
    with queries.spill_folder() as spill, report._without_cycle_collection():  # noqa: SLF001 - as report.run
        report._write(args, snapshot, output, spill, "bare")  # noqa: SLF001 - the report minus its table


def commit_time(folder: Path, files: int) -> float:
    """Seconds of one commit replacing a partition with ``files`` data files (one row each)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    warehouse = Warehouse(str(folder))
    date = "2026-06-01"
    data = scans.data_folder(warehouse, date, "many")
    os.makedirs(data, exist_ok=True)
    outline = shapely.box(0, 0, 1, 1)
    row = {"tile_id": "t", "scene_id": "s", "scene_uri": "/s.tif", "scan_id": "x", "acquired": None,
           "geometry": outline.wkb, "bbox": schema.bbox(outline), "lon": 0.5, "lat": 0.5, "area_m2": 1.0,
           "valid_fraction": 1.0, "mask_status": schema.MASK_ABSENT,
           **{f"{n}_fraction": None for n in ("clear", "cloud", "shadow", "haze")},
           **{f"p_{n}": 0.0 for n in LABELS}, "labels": [], "model_version": "v", "aoi": "many",
           "scan_date": dt.date(2026, 6, 1)}
    table = pa.Table.from_pylist([row], schema=schema.arrow_schema())
    paths = []
    for i in range(files):
        paths.append(f"{data}/part-{i:05d}.parquet")
        pq.write_table(table, paths[-1])
    t = time.perf_counter()
    scans.replace_partition(warehouse, date, "many", paths, {"run_id": publishing.new_run_id(), "partitions": []})
    return time.perf_counter() - t


def compare(cli: str, folder: Path, end: str, name: str) -> tuple:
    """Measure the bare query, the bare report, ``query alerts`` and ``report`` on the scans in ``folder``;
    print one line and return ``(rows, query, report, page MB, summary)``."""
    scans_folder = folder / "scans"
    listed = folder / "files.json"
    listed.write_text(json.dumps(list(scans.snapshot(Warehouse(str(scans_folder))).files)))
    bare = measure([sys.executable, __file__, "--bare", str(listed), end])
    bare_page = measure([sys.executable, __file__, "--bare_report", str(listed), str(scans_folder),
                         str(folder / "bare-report")])
    query = measure([cli, "query", "alerts", "--scans", str(scans_folder), "--param", "start_date=2026-06-01",
                     "--param", f"end_date={end}"])
    page = measure([cli, "report", "--scans", str(scans_folder), "--output", str(folder / "report"), "--no_images"])
    size = os.path.getsize(folder / "report" / "current" / "report.html") / 1e6
    summary = json.loads((folder / "report" / "current" / "summary.json").read_text())
    print(
        f"{name}: {summary['rows']:,} rows, {summary['alerts']:,} alerts in {summary['events']:,} events | "
        f"bare alerts query {bare[0]:.1f} s, {bare[1]:.2f} GB | through the table {query[0]:.1f} s, "
        f"{query[1]:.2f} GB ({query[0] / bare[0]:.2f}x, target <= 1.2) | report on the bare files "
        f"{bare_page[0]:.1f} s, through the table {page[0]:.1f} s ({page[0] / bare_page[0]:.2f}x, target <= 1.2), "
        f"{page[1]:.2f} GB (target < 1.5) | report.html {size:.1f} MB (target < 25) | "
        f"report / query alerts {page[0] / query[0]:.2f}x (target <= 1.25)",
        flush=True,
    )
    return summary["rows"], query, page, size, summary


def main() -> None:
    if sys.argv[1:2] == ["--bare"]:
        bare_query(json.loads(Path(sys.argv[2]).read_text()), sys.argv[3])
        return
    if sys.argv[1:2] == ["--bare_report"]:
        bare_report(json.loads(Path(sys.argv[2]).read_text()), sys.argv[3], sys.argv[4])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiles", type=int, default=313_000)
    p.add_argument("--dates", type=int, default=3)
    p.add_argument("--scales", default="1,4")
    p.add_argument("--work", default="/tmp/report_scale")
    p.add_argument("--commit_files", type=int, default=10_000)
    p.add_argument("--utm_events", type=int, default=16_000,
                   help="also a set of this many far-apart UTM events (4 x 4 tiles each; 0: none)")
    args = p.parse_args()
    cli = str(Path(sys.executable).with_name("planet-tiles"))
    end = (dt.date(2026, 6, 1) + dt.timedelta(days=14 * (args.dates - 1))).isoformat()
    results = []
    for scale in (int(s) for s in args.scales.split(",") if s):
        folder = Path(args.work) / f"x{scale}"
        if not (folder / "scans").exists():
            t = time.perf_counter()
            rows = build(folder / "scans", args.tiles * scale, args.dates)
            print(f"x{scale}: built {rows:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
        results.append((scale, *compare(cli, folder, end, f"x{scale} WebMercatorQuad block")))
    if args.utm_events:
        folder = Path(args.work) / f"utm{args.utm_events}"
        if not (folder / "scans").exists():
            t = time.perf_counter()
            rows = build_utm(folder / "scans", args.utm_events, args.dates)
            print(f"UTM: built {rows:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
        compare(cli, folder, end, f"{args.utm_events:,} UTM clusters")
    if len(results) > 1:
        (_, r0, _, p0, _, _), (_, r1, _, p1, _, _) = results[0], results[-1]
        print(f"rows x{r1 / r0:.0f}: report time x{p1[0] / p0[0]:.2f}, report peak memory x{p1[1] / p0[1]:.2f}")
    if args.commit_files:
        seconds = commit_time(Path(args.work) / "commit", args.commit_files)
        print(f"one commit replacing a partition with {args.commit_files:,} data files: {seconds:.1f} s")


if __name__ == "__main__":
    main()
