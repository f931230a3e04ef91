"""Upkeep of a warehouse's tables (the scans, and the clearings once delineated): expire old snapshots, then
delete the files no snapshot references.

    planet-tiles maintain --scans scans/ [--keep_days 30] [--orphan_days 3] [--dry_run]

Iceberg's own semantics, done by pyiceberg's snapshot expiry and this module's orphan sweep (pyiceberg has
no orphan-file removal yet):

1. Snapshots older than ``--keep_days`` are expired (the current one is always kept): time travel
   (``query --as_of``) reaches back that far, and no further.
2. A file under the table's folder, or a run's error lines under ``errors/``, that no remaining snapshot
   references is an orphan: data files of runs that failed, were killed or were replaced, metadata of
   expired snapshots, error lines of runs that were never committed. Orphans older than ``--orphan_days``
   are deleted; younger ones may belong to a run still writing (Iceberg's own default is 3 days, and its
   procedure refuses less than one day: so does this).

It also makes the table when there is none yet (a warehouse whose table BigQuery should see before the
first scan). Run it from a scheduler, e.g. weekly after the scans.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence

from pyiceberg.exceptions import CommitFailedException

from pipelines.store import catalog, scans
from pipelines.store import clearings as stored_clearings
from pipelines.store.catalog import Warehouse
from planet_core import commands, logs, storage
from planet_core.errors import UserError

log = logging.getLogger(__name__)

KEEP_DAYS = 30
ORPHAN_DAYS = 3
#: The youngest orphans the sweep may delete, in days: Iceberg's own procedure refuses an interval under 24
#: hours, since a run still writing has files no snapshot references yet.
MIN_ORPHAN_DAYS = 1


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("maintain", __doc__)
    p.add_argument("--scans", required=True, help="the scans' warehouse (what scan's --output was), local or gs://")
    catalog.add_argument(p)
    p.add_argument("--keep_days", type=float, default=KEEP_DAYS,
                   help=f"expire snapshots older than this many days; the current one stays (default {KEEP_DAYS})")
    p.add_argument("--orphan_days", type=float, default=ORPHAN_DAYS,
                   help="delete files no snapshot references once they are this many days old: younger ones may "
                        f"be a running scan's (default {ORPHAN_DAYS}, at least {MIN_ORPHAN_DAYS})")
    p.add_argument("--dry_run", action="store_true", help="say what would be expired and deleted, change nothing")
    return p


def referenced(table, expiring: set[int] = frozenset()) -> set[str]:  # noqa: ANN001 - pyiceberg.table.Table
    """Every file a snapshot of the table needs (but the snapshots in ``expiring``): metadata files (current
    and logged), manifest lists, manifests, live data and delete files, statistics; and the error lines the
    commits name."""
    metadata = table.metadata
    needed = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    needed |= {s.statistics_path for s in metadata.statistics} | {
        s.statistics_path for s in metadata.partition_statistics
    }
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in expiring:
            continue
        needed.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            needed.add(manifest.manifest_path)
            needed |= {
                entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
            }
        errors = (snapshot.summary.additional_properties if snapshot.summary else {}).get(scans.PREFIX + "errors")
        if errors:
            needed.add(errors)
    return {_plain(path) for path in needed}


def _plain(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def orphans(warehouse: Warehouse, tables: Sequence, older_than: float,
            expiring: set[int] = frozenset()) -> list[str]:
    """Files under the tables' folders (``pyiceberg.table.Table`` values) and the errors folder that no
    snapshot of any of them (but those ``expiring``) references and that were last written before
    ``older_than`` (seconds since the epoch)."""
    needed = set().union(*(referenced(table, expiring) for table in tables))
    found = []
    for folder in [_plain(table.metadata.location) for table in tables] + [warehouse.path("errors")]:
        for path, modified in storage.modified(storage.join(folder, "**")):
            if _plain(path) not in needed and modified < older_than:
                found.append(path)
    return found


def maintain(warehouse: Warehouse, keep_days: float = KEEP_DAYS, orphan_days: float = ORPHAN_DAYS,
             dry_run: bool = False) -> dict:
    """Expire, then sweep; what was (or, with ``dry_run``, would be) expired and deleted."""
    if keep_days < 0:
        raise UserError(f"--keep_days {keep_days:g}: must be 0 or more")
    if orphan_days < MIN_ORPHAN_DAYS:
        raise UserError(f"--orphan_days {orphan_days:g}: must be at least {MIN_ORPHAN_DAYS} (a younger file no "
                        "snapshot references may be a running scan's, not yet committed: deleting it would lose "
                        "that scan's rows, or leave its commit naming files that are gone)")
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=keep_days)
    # The scans table is made when there is none (the docstring), and says so: a mistyped --scans would
    # otherwise pass for a warehouse with nothing to do. The clearings table is kept once delineate made it.
    # Both are swept, and the errors folder against the error lines of every table's commits.
    warehouse.check_own_folder("--scans")
    made = not (warehouse.exists() and warehouse.open().table_exists(scans.IDENTIFIER))
    if made and dry_run:
        raise UserError(f"--scans {warehouse.location}: no scans table there (--dry_run makes none)")
    names = [scans.TABLE] + ([stored_clearings.TABLE] if warehouse.open().table_exists(stored_clearings.IDENTIFIER)
                             else [])
    expired = {name: _expire(warehouse, name, cutoff, dry_run) for name in names}
    tables = {name: scans.open_table(warehouse, name=name) for name in names}
    swept = orphans(warehouse, list(tables.values()), time.time() - orphan_days * 86400,
                    set().union(*expired.values()) if dry_run else frozenset())
    if not dry_run:
        storage.delete(swept)
        for folder in {path.rsplit("/", 1)[0] for path in swept}:
            storage.delete_empty_folders(folder)
    if made:
        log.warning("%s: there was no scans table; an empty one is made (what BigQuery's view reads before the "
                    "first scan). If you meant another warehouse, delete this folder", warehouse.location)
    return {
        "tables": names,
        "made": made,
        "snapshots_expired": sum(len(e) for e in expired.values()),
        "snapshots_kept": sum(len(t.metadata.snapshots) - len(expired[n]) * dry_run for n, t in tables.items()),
        "files_deleted": len(swept),
        "dry_run": dry_run,
        "deleted": [catalog.relative(warehouse, path) for path in swept],
    }


def _expire(warehouse: Warehouse, name: str, cutoff: dt.datetime, dry_run: bool) -> set[int]:
    """Expire table ``name``'s snapshots older than ``cutoff`` but its current one (with ``dry_run``, only say
    which); the ids expired."""

    def due(table) -> set[int]:  # noqa: ANN001
        current = table.current_snapshot()
        return {
            s.snapshot_id
            for s in table.metadata.snapshots
            if s.timestamp_ms < cutoff.timestamp() * 1000 and (current is None or s.snapshot_id != current.snapshot_id)
        }

    table = scans.open_table(warehouse, name=name)
    expiring = due(table)
    if expiring and not dry_run:
        for _ in range(scans.ATTEMPTS):
            try:
                table.maintenance.expire_snapshots().older_than(cutoff).commit()
                break
            except CommitFailedException:  # a run committed meanwhile: expire on its metadata
                time.sleep(0.1)
                table = scans.open_table(warehouse, name=name)
                expiring = due(table)
    return expiring


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    args = build_parser().parse_args(argv)
    done = maintain(Warehouse(args.scans, args.catalog), args.keep_days, args.orphan_days, args.dry_run)
    print(json.dumps(done, indent=2))


if __name__ == "__main__":
    main()
