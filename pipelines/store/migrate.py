"""Import scans written before the table (Hive folders with manifests) into the scans table, once.

    planet-tiles migrate --scans scans/

Earlier versions wrote ``scans/scan_date=D/aoi=A/part-*.parquet`` and switched each partition's
``_manifest.json`` to the files of the run that published it (the streaming scan wrote
``part-stream-*.parquet`` files under a ``_manifest-stream.json``). Each partition is imported from the
files its manifest names, and nothing else (a killed run's leftovers stay out), as one commit replacing
that partition of the table: so a second ``migrate`` changes nothing. The rows gain the columns the
table has since (``scan_date`` and ``aoi`` from the path; ``scene_uri`` from the manifest's scene
locations; ``mask_status`` from the fractions and the run's error lines; ``bbox`` from the geometry).

A partition without a manifest is not imported and is named. The old folders are left as they were: this
tool never deletes what it may not own; remove them once the table reads right.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import logging
import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from pipelines.store import catalog, scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import commands, logs, publishing, storage
from planet_core.errors import UserError

log = logging.getLogger(__name__)

BATCH, STREAM = "_manifest.json", "_manifest-stream.json"


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("migrate", __doc__)
    p.add_argument("--scans", required=True, help="a local folder of scans in the layout before tables")
    catalog.add_argument(p)
    return p


def partitions(folder: str) -> list[tuple[str, str, str]]:
    """``(scan date, aoi, folder)`` of every Hive partition folder under ``folder``."""
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "scan_date=*", "aoi=*"))):
        if os.path.isdir(path):
            date = os.path.basename(os.path.dirname(path))[len("scan_date="):]
            found.append((date, os.path.basename(path)[len("aoi="):], path))
    return found


def _listed(folder: str) -> tuple[list[str], dict] | None:
    """The partition's Parquet files as its manifest names them, and the manifest; None without one."""
    if os.path.exists(os.path.join(folder, BATCH)):
        manifest = json.loads(storage.read_text(os.path.join(folder, BATCH)))
        names = publishing.paths(folder, manifest.get("files", []))
        return [p for p in names if p.endswith(".parquet")], manifest
    if os.path.exists(os.path.join(folder, STREAM)):  # the stream's files are the partition's part-stream-* files
        manifest = json.loads(storage.read_text(os.path.join(folder, STREAM)))
        return sorted(glob.glob(os.path.join(folder, "part-stream-*.parquet"))), manifest
    return None


def _unreadable_masks(folder: str, manifest: dict) -> set[str]:
    """Tiles the run kept although their cloud mask could not be read (its error lines say which)."""
    tiles = set()
    for path in publishing.paths(folder, manifest.get("files", [])):
        if os.path.basename(path).startswith("errors-") and os.path.exists(path):
            for line in storage.read_text(path).splitlines():
                if line.strip() and (record := json.loads(line)).get("mask_error"):
                    tiles.add(record.get("item"))
    return tiles


def rows_of(folder: str, files: Sequence[str], manifest: dict, scan_date: str, aoi: str):  # noqa: ANN201
    """The partition's rows as a ``pyarrow.Table`` of the table's schema."""


    table = pa.concat_tables([pq.read_table(path) for path in files]) if files else pa.table({})
    rows = table.num_rows
    uris = manifest.get("scene_uris") or {}
    unreadable = _unreadable_masks(folder, manifest)
    bounds = shapely.bounds(shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))) if rows else []
    clear = table.column("clear_fraction").to_pylist() if rows else []
    tiles = table.column("tile_id").to_pylist() if rows else []
    columns = {
        "scene_uri": [uris.get(scene, "") for scene in table.column("scene_id").to_pylist()] if rows else [],
        "bbox": [dict(zip(schema.BBOX_FIELDS, map(float, b))) for b in bounds],
        "mask_status": [schema.MASK_UNREADABLE if tile in unreadable else
                        schema.MASK_ABSENT if value is None else schema.MASK_READ for tile, value in zip(tiles, clear)],
        "aoi": [aoi] * rows, "scan_date": [dt.date.fromisoformat(scan_date)] * rows,
    }
    target = schema.arrow_schema()
    arrays = [columns[f.name] if f.name in columns else table.column(f.name) for f in target]
    return pa.Table.from_arrays([pa.array(a, f.type) if isinstance(a, list) else a.cast(f.type)
                                 for a, f in zip(arrays, target)], schema=target)


def migrate(folder: str, catalog_spec: str | None = None) -> dict:
    """Import every partition of ``folder`` that has a manifest; what was imported and what was not."""
    warehouse = Warehouse(folder, catalog_spec)
    found = partitions(folder)
    if not found:
        raise UserError(f"--scans {folder}: no scan_date=/aoi= partition folders there: nothing to import")
    scans.open_table(warehouse, beside_old_layout=True)
    imported, refused = {}, []
    for scan_date, aoi, path in found:
        try:
            scans.check_scan_date(scan_date)
        except ValueError:
            refused.append(f"scan_date={scan_date}/aoi={aoi} (not a YYYY-MM-DD date)")
            continue
        listed = _listed(path)
        if listed is None:
            refused.append(f"scan_date={scan_date}/aoi={aoi} (no manifest: files of a run that never published)")
            continue
        files, manifest = listed
        rows = rows_of(path, files, manifest, scan_date, aoi)
        if not rows.num_rows:
            refused.append(f"scan_date={scan_date}/aoi={aoi} (its manifest lists no rows)")
            continue
        run = publishing.new_run_id()
        target = storage.join(scans.data_folder(warehouse, scan_date, aoi), f"part-migrated-{run}.parquet")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        pq.write_table(rows, target, compression=schema.COMPRESSION)
        facts = {"pipeline": "migrate", "run_id": run, "partitions": [f"{scan_date}/{aoi}"],
                 "migrated_from": manifest.get("run_id") or manifest.get("pipeline"), "bundle": manifest.get("bundle"),
                 "model_version": manifest.get("model_version"), "inferred": rows.num_rows}
        scans.replace_partition(warehouse, scan_date, aoi, [target], facts)
        imported[f"scan_date={scan_date}/aoi={aoi}"] = rows.num_rows
        log.info("imported scan_date=%s/aoi=%s: %d rows from %d files", scan_date, aoi, rows.num_rows, len(files))
    return {"imported": imported, "not_imported": refused}


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    args = build_parser().parse_args(argv)
    if "://" in args.scans:
        raise UserError(f"--scans {args.scans}: migrate reads a local folder (copy the scans down first)")
    done = migrate(args.scans, args.catalog)
    for line in done["not_imported"]:
        log.warning("not imported: %s", line)
    print(json.dumps(done, indent=2))
    print(f"the scan_date=*/ folders of {args.scans} are no longer read; remove them once the table reads right")


if __name__ == "__main__":
    main()
