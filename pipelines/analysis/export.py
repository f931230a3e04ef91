"""Export: a table as a file QGIS and every GIS opens (GeoPackage, FlatGeobuf, GeoJSON).

    planet-tiles export clearings --scans scans/ --output clearings.gpkg
    planet-tiles export tile_labels --scans scans/ --aoi xingu --as_of 2026-11-24 --output scans.fgb
    planet-tiles export events --report report/ --output events.geojson

GeoParquet is what the tools write, and what engines read; GDAL builds without its Parquet driver (Debian's,
so QGIS on it) cannot open it. This writes one snapshot of a warehouse table (``tile_labels``, the scans;
``clearings``) or the current version of a report's table (``alerts``, ``events``, ``clearings``) through
pyogrio, in EPSG:4326. The format follows ``--format`` or the output's extension. Columns those formats
cannot hold become text: lists and records as JSON; the ``bbox`` covering column is left out (the formats
index their geometries themselves). The file is written beside its final name and renamed into place, so
a reader never opens half of it; an existing file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from pipelines.analysis import queries
from pipelines.analysis.report import CURRENT
from pipelines.store import clearings as stored_clearings
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from planet_core import commands, logs, publishing, storage
from planet_core.errors import RunFailed, UserError

#: Output formats: the GDAL driver of each, by name and by file extension.
FORMATS = {"gpkg": "GPKG", "fgb": "FlatGeobuf", "geojson": "GeoJSON"}
WAREHOUSE_TABLES = (scans.TABLE, stored_clearings.TABLE)
REPORT_TABLES = ("alerts", "events", "clearings")
#: Free space under which a failed write is put down to a full disk (GDAL's own messages do not say so).
FULL_DISK_BYTES = 1 << 20


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("export", __doc__)
    p.add_argument("table", choices=sorted(set(WAREHOUSE_TABLES) | set(REPORT_TABLES)),
                   help="tile_labels (the scans) or clearings from --scans; alerts, events or clearings from "
                        "--report")
    p.add_argument("--scans", help="the warehouse to read tile_labels or clearings from (its current snapshot)")
    p.add_argument("--catalog", help="the warehouse's Iceberg catalog, as for scan (default: embedded)")
    p.add_argument("--as_of", help="with --scans: the snapshot current at this time (ISO 8601)")
    p.add_argument("--aoi", help="with --scans: only this AOI's rows")
    p.add_argument("--report", help="a report folder: its current version's alerts, events or clearings")
    p.add_argument("--output", required=True, help="the file to write, local (.gpkg, .fgb, .geojson)")
    p.add_argument("--format", choices=sorted(FORMATS),
                   help="the file format (default: from the output's extension)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --output when it exists (default: refuse; it may be a file of yours, or a "
                        "GeoPackage holding other layers, which replacing would lose)")
    return p


def _check_output(args: argparse.Namespace) -> None:
    """``--output`` is a file this run may write: not a folder, and not an existing file unless
    ``--overwrite`` (the export replaces the whole file: a GeoPackage's other layers would go with it)."""
    if "://" in args.output:
        raise UserError(f"--output {args.output}: export writes local files (copy it to the bucket afterwards)")
    if os.path.isdir(args.output):
        raise UserError(f"--output {args.output}: a folder; name the file to write in it")
    if os.path.lexists(args.output) and not args.overwrite:
        raise UserError(f"--output {args.output}: exists; pass --overwrite to replace it (the whole file, every "
                        "layer of a GeoPackage), or name another")


def _format(args: argparse.Namespace) -> str:
    """``--format``, else the output's extension; the two must not say different formats (GeoJSON written
    into a ``.gpkg`` file is a file no GIS opens as what it is called)."""
    extension = os.path.splitext(args.output)[1].lstrip(".").lower()
    if args.format:
        if extension in FORMATS and extension != args.format:
            raise UserError(f"--format {args.format}: --output {args.output} says {extension}; give one format")
        return args.format
    if extension not in FORMATS:
        raise UserError(f"--output {args.output}: say the format with --format ({', '.join(sorted(FORMATS))}) or "
                        "an extension of one")
    return extension


def read_table(args: argparse.Namespace) -> pa.Table:
    """The rows the flags name, as Arrow."""
    if bool(args.scans) == bool(args.report):
        raise UserError("give either --scans (tile_labels, clearings) or --report (alerts, events, clearings)")
    if args.report:
        if args.table not in REPORT_TABLES:
            raise UserError(f"{args.table}: a report holds {', '.join(REPORT_TABLES)}; {args.table} is read from "
                            "--scans")
        if args.as_of or args.aoi:
            raise UserError("--as_of and --aoi apply to --scans; a report is exported as its current version is")
        manifest = publishing.read(args.report, CURRENT)
        if not manifest:
            raise UserError(f"--report {args.report}: no report there (no {CURRENT}: give the folder report's "
                            f"--output named, not its {publishing.LINK}/)")
        wanted = f"{args.table}.parquet"
        found = [p for p in publishing.paths(args.report, manifest.get("files", [])) if p.endswith("/" + wanted)]
        if not found:
            raise UserError(f"--report {args.report}: its current version has no {wanted} (written by an older "
                            "report: run report again)")
        return pq.read_table(pa.BufferReader(storage.read_bytes(found[0])))
    if args.table not in WAREHOUSE_TABLES:
        raise UserError(f"{args.table}: the warehouse holds {', '.join(WAREHOUSE_TABLES)}; {args.table} is read "
                        "from --report")
    of_aoi = f" of --aoi {args.aoi}" if args.aoi else ""
    if args.table == scans.TABLE:
        snapshot = queries.open_snapshot(args, args.aoi)
        if not snapshot.files:  # an empty file for a mistyped AOI would read as "nothing there"
            raise UserError(f"--scans {args.scans}: no scan rows{of_aoi}")
        return snapshot.arrow_reader().read_all()
    warehouse = Warehouse(args.scans, args.catalog)
    if args.as_of:
        raise UserError("--as_of applies to tile_labels; clearings are exported as they are now")
    if not (warehouse.exists() and warehouse.open().table_exists(stored_clearings.IDENTIFIER)):
        raise UserError(f"--scans {args.scans}: no clearings there (planet-tiles delineate writes them)")
    if args.aoi and stored_clearings.latest(warehouse, args.aoi) is None:  # never delineated, or mistyped
        raise UserError(f"--scans {args.scans}: no clearings{of_aoi} there (planet-tiles delineate writes them)")
    table = scans.open_table(warehouse, create=False, name=stored_clearings.TABLE)
    rows = table.scan().to_arrow()
    return rows.filter(pc.equal(rows["aoi"], args.aoi)) if args.aoi else rows


def for_gis(table: pa.Table) -> pa.Table:
    """Columns GeoPackage, FlatGeobuf and GeoJSON hold: lists and records as JSON text, no ``bbox``, the
    geometry as WKB last."""
    columns, names = [], []
    for name in table.column_names:
        column = table[name]
        if name in ("bbox", "geometry"):
            continue
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_struct(column.type):
            column = pa.array([None if v is None else json.dumps(v, default=str) for v in column.to_pylist()],
                              pa.string())
        columns.append(column)
        names.append(name)
    return pa.Table.from_arrays([*columns, table["geometry"]], names=[*names, "geometry"])


def run(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    kind = _format(args)
    _check_output(args)
    rows = for_gis(read_table(args))
    folder = os.path.dirname(os.path.abspath(args.output))
    storage.check_writable(folder)
    # the extension stays last: GDAL's drivers judge a file by it (FlatGeobuf would make a folder otherwise)
    temporary = os.path.join(folder, f".partial-{os.getpid()}-{os.path.basename(args.output)}")
    if not temporary.lower().endswith("." + kind):
        temporary += "." + kind
    try:
        pyogrio.write_arrow(rows, temporary, driver=FORMATS[kind], geometry_name="geometry",
                            geometry_type="Unknown", crs="EPSG:4326", layer=args.table)
        os.replace(temporary, args.output)
    except (DataSourceError, DataLayerError) as error:  # GDAL's, not OSError: a full disk says "Cannot write"
        full = shutil.disk_usage(folder).free < FULL_DISK_BYTES
        raise RunFailed(f"{args.output} could not be written" + (" (no space left on the disk)" if full else "")
                        + f": {str(error).splitlines()[0]}; nothing was written") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return {"table": args.table, "rows": rows.num_rows, "format": kind, "output": args.output}


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    print(json.dumps(run(argv)))


if __name__ == "__main__":
    main()
