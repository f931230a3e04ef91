"""The scans: one Apache Iceberg table, ``planet_tiles.tile_labels``, written by commits and read by snapshots.

    <warehouse>/catalog.db                                   the embedded catalog (no --catalog)
    <warehouse>/tile_labels/metadata/...                     the table's metadata (snapshots, manifests)
    <warehouse>/tile_labels/data/scan_date=D/aoi=A/*.parquet data files (GeoParquet), one partition each
    <warehouse>/errors/<run>.jsonl                           a run's error lines, named by its commit

Writers: a batch scan writes its data files, then :func:`replace_partition` swaps its (scan date, AOI)
partition to them in one commit, retried on a fresh load when another writer committed first, so two
scans of one partition leave exactly one of them. The streaming scan :func:`append_files` each window.
A run's facts (counts, bundle, run id, errors file) are the commit's snapshot properties
(``planet-tiles.*``). Files a failed or killed run wrote are in no snapshot: no reader sees them, and
``planet-tiles maintain`` removes them.

Readers: :func:`snapshot` gives the data files of the current snapshot (or the one at a time), which
DuckDB reads; nothing lists data folders, so files no snapshot names are invisible.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    NoSuchTableError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue, And, EqualTo
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.table.snapshots import ancestors_of

from pipelines.store import schema
from pipelines.store.catalog import NAMESPACE, Warehouse
from planet_core import storage
from planet_core.errors import UserError

log = logging.getLogger(__name__)

TABLE = "tile_labels"
IDENTIFIER = f"{NAMESPACE}.{TABLE}"
#: Snapshot properties written by these tools carry this prefix (Iceberg's own summary keys do not).
PREFIX = "planet-tiles."
#: Commits retried on a fresh load when a concurrent writer got there first.
ATTEMPTS = 30
#: Table properties: Iceberg format v2 (pyiceberg cannot write v3, the version with a geometry type, so
#: geometry is WKB), and the old metadata files of each commit deleted beyond the last 100.
TABLE_PROPERTIES = {"format-version": "2", "write.metadata.delete-after-commit.enabled": "true",
                    "write.metadata.previous-versions-max": "100", "write.parquet.compression-codec": "zstd"}

#: Data files are written by Beam and pyarrow, without Iceberg field ids: readers map columns by name.
NAME_MAPPING = "schema.name-mapping.default"

# pyiceberg logs each retried commit as a warning; a retry is the normal outcome of two writers here.
logging.getLogger("pyiceberg.table").setLevel(logging.ERROR)


_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")


def check_scan_date(text: str) -> str:
    """``YYYY-MM-DD`` or a ``ValueError`` naming the flag (the date becomes a partition of the table)."""
    try:
        if _DATE.fullmatch(text) is None:
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"--scan_date {text!r}: write the date as YYYY-MM-DD") from None


def data_folder(warehouse: Warehouse, scan_date: str, aoi: str) -> str:
    """Where a run writes the data files of one partition (Hive-style names, for people browsing: readers
    never list it)."""
    values = {"scan_date": scan_date, "aoi": aoi}
    return warehouse.path(TABLE, "data", *(f"{key}={values[key]}" for key in schema.PARTITION_KEYS))


def errors_path(warehouse: Warehouse, run_id: str) -> str:
    """A run's error lines: outside the table's folder, so no engine's orphan clean-up mistakes them for
    table files, and no reader of the data folder trips on them."""
    return warehouse.path("errors", f"{run_id}.jsonl")


def open_table(warehouse: Warehouse, create: bool = True, beside_old_layout: bool = False,  # noqa: ANN201
               name: str = TABLE):
    """The scans table (or the warehouse's table ``name`` of :data:`pipelines.store.schema.TABLES`, such as
    the clearings), a ``pyiceberg.table.Table``; made on first use (``create``) with the schema of
    :mod:`pipelines.store.schema`, and given the columns that schema has gained since (Iceberg schema
    evolution: older files read them as null). A folder holding scans of the layout before tables gets a
    table only from ``migrate`` (``beside_old_layout``): a table made beside them would hide them."""
    identifier = f"{NAMESPACE}.{name}"
    if not create and not warehouse.exists():
        raise UserError(f"{warehouse.location}: no scans there (no {name} table)" + _old_layout_hint(warehouse))
    catalog = warehouse.open()
    columns = schema.TABLES[name].columns
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        if not create or (_old_layout_hint(warehouse) and not beside_old_layout):
            raise UserError(f"{warehouse.location}: no scans there (no {name} table)"
                            + _old_layout_hint(warehouse)) from None
        iceberg = schema.iceberg_schema(columns)
        table = catalog.create_table_if_not_exists(
            identifier, schema=iceberg, location=warehouse.table_location(name),
            partition_spec=schema.iceberg_partition_spec(iceberg, schema.partition_keys(columns)),
            properties=TABLE_PROPERTIES)
    if not storage.same_place(table.location(), warehouse.table_location(name)):
        # A copy of a warehouse folder (cp -r, a restored backup elsewhere): Iceberg records where a table's
        # files are, so the copy's catalog names the original's. Its commits would write metadata into the
        # original (orphans there, swept by the original's upkeep), and its upkeep would sweep the
        # original's folder against the copy's snapshots: the original's newest files deleted.
        where = f"{warehouse.location}: its {name} table is {table.location()}, not this folder's"
        if create:
            raise UserError(f"{where} (a copy of that warehouse: Iceberg tables name their files where they were "
                            "made). A copy can be read, not written or maintained: scan into, delineate and "
                            "maintain the original, or put the copy back where the original was")
        log.warning("%s: reading the files there (a copy of that warehouse reads the original's)", where)
    if create:
        table = _up_to_date(catalog, table, identifier, columns)
    return table


def _up_to_date(catalog, table, identifier: str, columns: Sequence[schema.Column]):  # noqa: ANN001, ANN202
    """Give the table the columns :mod:`pipelines.store.schema` has gained since it was made, and a name
    mapping of its current schema (the catalog assigns field ids at creation, so the mapping is made from
    the table's own schema). Two processes may do this at once: the loser reloads and finds it done."""
    for _ in range(ATTEMPTS):
        missing = {c.name for c in columns} - {f.name for f in table.schema().fields}
        mapping = table.schema().name_mapping.model_dump_json()
        if not missing and table.properties.get(NAME_MAPPING) == mapping:
            return table
        try:
            with table.transaction() as transaction:
                if missing:
                    with transaction.update_schema() as update:
                        update.union_by_name(schema.iceberg_schema(columns, optional=sorted(missing)))
                transaction.set_properties(
                    {NAME_MAPPING: transaction.table_metadata.schema().name_mapping.model_dump_json()}
                )
        except CommitFailedException:
            time.sleep(random.uniform(0.05, 0.2))
        if missing:
            log.info("%s: added columns %s", identifier, ", ".join(sorted(missing)))
        table = catalog.load_table(identifier)
    return table


def _old_layout_hint(warehouse: Warehouse) -> str:
    if warehouse.local and glob.glob(os.path.join(warehouse.path(), "scan_date=*", "aoi=*")):
        return (f"; it holds scans in the layout before tables (scan_date=/aoi= folders with _manifest.json): "
                f"import them once with `planet-tiles migrate --scans {warehouse.location}`")
    return ""


def _partition_filter(scan_date: str, aoi: str):  # noqa: ANN202 - pyiceberg expression
    return And(EqualTo("scan_date", scan_date), EqualTo("aoi", aoi))


def properties(facts: Mapping[str, Any]) -> dict[str, str]:
    """Run facts as snapshot properties: strings under :data:`PREFIX`; lists and dicts as JSON."""
    return {PREFIX + key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            for key, value in facts.items() if value is not None}


def committed(table, run_id: str) -> int | None:  # noqa: ANN001
    """The snapshot a run committed, if one is in the table's current lineage."""
    for commit in commits_of(table):
        if commit.facts.get("run_id") == run_id:
            return commit.snapshot_id
    return None


def replace_partition(warehouse: Warehouse, scan_date: str, aoi: str, files: Sequence[str],
                      facts: Mapping[str, Any]) -> int:
    """Make ``files`` (data files of that partition, already written) the whole of partition (``scan_date``,
    ``aoi``) in one commit whose snapshot carries ``facts``; return its snapshot id (:func:`replace`)."""
    return replace(warehouse, files, facts, _partition_filter(scan_date, aoi),
                   f"partition scan_date={scan_date}/aoi={aoi}",
                   check=lambda added: _check_partition(added, scan_date, aoi))


def replace(warehouse: Warehouse, files: Sequence[str], facts: Mapping[str, Any], row_filter: Any, what: str,
            name: str = TABLE, check: Callable[[list[Any]], None] | None = None) -> int:
    """Make ``files`` (data files already written) the whole of what ``row_filter`` selects in the table
    ``name`` (``what`` names it in errors) in one commit whose snapshot carries ``facts``; return its
    snapshot id. ``check`` sees the files' Iceberg entries first.

    A writer that committed between our load and our commit makes ours fail; it is retried on a fresh load,
    replacing what that writer committed (the last to commit wins, never both). A retry first checks
    whether the failed attempt landed after all, so a run is never committed twice: a REST catalog (BigLake)
    behind a gateway that times out may have committed without saying so (``CommitStateUnknownException``).
    """
    run_id, identifier = facts["run_id"], f"{NAMESPACE}.{name}"
    table = open_table(warehouse, name=name)
    added = [parquet_file_to_data_file(table.io, table.metadata, path) for path in files]
    if check is not None:
        check(added)
    for attempt in range(ATTEMPTS):
        if attempt:
            table = open_table(warehouse, name=name)
            if (done := committed(table, run_id)) is not None:
                return done
        replaced = [task.file for task in table.scan(row_filter=row_filter).plan_files()]
        try:
            with table.transaction() as transaction, \
                    transaction.update_snapshot(snapshot_properties=properties(facts)).overwrite() as overwrite:
                for data_file in replaced:
                    overwrite.delete_data_file(data_file)
                for data_file in added:
                    overwrite.append_data_file(data_file)
        except CommitStateUnknownException as error:
            log.warning("%s: the catalog did not say whether the commit landed (%s); looking", identifier, error)
            continue
        except (CommitFailedException, ValidationException) as error:
            log.info("%s: another writer committed first (%s); retrying", identifier, error)
            time.sleep(random.uniform(0.05, 0.2) * min(attempt + 1, 10))
            continue
        return committed(table, run_id) or table.current_snapshot().snapshot_id
    raise RuntimeError(f"{identifier}: could not commit {what} after {ATTEMPTS} attempts (too many concurrent "
                       "writers)")


def _check_partition(data_files: Iterable[Any], scan_date: str, aoi: str) -> None:
    """Every file must hold exactly that partition (pyiceberg takes partition values from the files)."""
    want = (dt.date.fromisoformat(scan_date), aoi)
    for data_file in data_files:
        days, name = data_file.partition[0], data_file.partition[1]
        got = (dt.date(1970, 1, 1) + dt.timedelta(days=days) if isinstance(days, int) else days, name)
        if got != want:
            raise ValueError(f"{data_file.file_path} holds partition {got}, not {want}")


def append_files(warehouse: Warehouse, files: Sequence[str], facts: Mapping[str, Any]) -> int | None:
    """Add ``files`` to the table in one commit (the streaming scan's windows); files already in the table
    (a retried window) are left out, so a retry never doubles rows. Returns the snapshot id, or None when
    every file was already committed."""
    for attempt in range(ATTEMPTS):
        table = open_table(warehouse)
        partitions = {partition_of(path) for path in files}
        present = {task.file.file_path for scan_date, aoi in partitions
                   for task in table.scan(row_filter=_partition_filter(scan_date, aoi)).plan_files()}
        new = [path for path in files if path not in present]
        if not new:
            return None
        try:
            table.add_files(new, snapshot_properties=properties(facts))
        except CommitStateUnknownException:  # landed or not: the next attempt sees which files are in
            continue
        except CommitFailedException:
            time.sleep(random.uniform(0.05, 0.2) * min(attempt + 1, 10))
            continue
        return table.current_snapshot().snapshot_id
    raise RuntimeError(f"{IDENTIFIER}: could not append {len(files)} files after {ATTEMPTS} attempts")


def partition_of(path: str) -> tuple[str, str]:
    """(scan date, AOI) of a data file from its folder (what :func:`data_folder` named it): a writer's own
    files, never a listing."""
    parts = dict(part.split("=", 1) for part in path.split("/") if part.startswith(("scan_date=", "aoi=")))
    return parts["scan_date"], parts["aoi"]


def write_rows(warehouse: Warehouse, scan_date: str, aoi: str, rows: Sequence[dict], facts: Mapping[str, Any]) -> int:
    """Write ``rows`` (scan rows of one partition) as one data file and replace the partition with it: the
    scan's commit for callers that hold rows in memory (``migrate``, benchmarks, tests)."""
    path = storage.join(data_folder(warehouse, scan_date, aoi), f"part-{facts['run_id']}.parquet")
    storage.write_bytes(path, schema.parquet_bytes(rows, schema.COLUMNS))
    return replace_partition(warehouse, scan_date, aoi, [path], facts)


@dataclass(frozen=True)
class Commit:
    """One snapshot of the table's lineage, with the facts these tools attached to it."""

    snapshot_id: int
    committed: dt.datetime
    operation: str
    facts: dict[str, Any]

    @property
    def partitions(self) -> list[tuple[str, str]]:
        """The (scan date, AOI) partitions the commit wrote (its ``partitions`` fact: ``D/A`` strings)."""
        return [tuple(p.split("/", 1)) for p in self.facts.get("partitions", [])]

    @property
    def aois(self) -> set[str]:
        return {aoi for _, aoi in self.partitions}


def commits_of(table, snapshot_id: int | None = None) -> list[Commit]:  # noqa: ANN001 - pyiceberg.table.Table
    """The lineage of the current snapshot (or of ``snapshot_id``), newest first."""
    head = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    found = []
    for snap in ancestors_of(head, table.metadata):
        extra = snap.summary.additional_properties if snap.summary else {}
        facts = {}
        for key, value in extra.items():
            if key.startswith(PREFIX):
                try:
                    facts[key[len(PREFIX):]] = json.loads(value)
                except ValueError:
                    facts[key[len(PREFIX):]] = value
        found.append(Commit(snap.snapshot_id, dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, dt.timezone.utc),
                            str(snap.summary.operation.value) if snap.summary else "", facts))
    return found


def commits(warehouse: Warehouse, snapshot_id: int | None = None) -> list[Commit]:
    return commits_of(open_table(warehouse, create=False), snapshot_id)


def run_commit(warehouse: Warehouse, run_id: str, name: str = TABLE) -> Commit | None:
    """Run ``run_id``'s commit to the warehouse's table ``name``, if it made one (in the current lineage)."""
    return next((c for c in commits_of(open_table(warehouse, create=False, name=name))
                 if c.facts.get("run_id") == run_id), None)


def committed_before_failing(warehouse: Warehouse, run_id: str, name: str = TABLE) -> bool:
    """For a run that failed: whether it had committed to table ``name`` first (a launcher that lost its job's
    status after the job's last step). A table that cannot be read, maybe what failed, counts as not."""
    try:
        return run_commit(warehouse, run_id, name) is not None
    except Exception:  # noqa: BLE001 - asked while reporting another failure, which must not be masked
        return False


def aoi_version(warehouse: Warehouse, aoi: str, snapshot_id: int | None = None) -> int | None:
    """The snapshot id of the newest commit (up to ``snapshot_id``) that wrote ``aoi``: what changes when,
    and only when, that AOI's scans change (what derived tables such as the clearings record)."""
    return next((c.snapshot_id for c in commits(warehouse, snapshot_id) if aoi in c.aois), None)


def latest_bundle(warehouse: Warehouse, aoi: str | None = None, snapshot_id: int | None = None) -> str | None:
    """The bundle of the newest commit (of ``aoi``; up to ``snapshot_id``) that names one."""
    for commit in commits(warehouse, snapshot_id):
        if commit.facts.get("bundle") and (aoi is None or aoi in commit.aois):
            return commit.facts["bundle"]
    return None


@dataclass(frozen=True)
class Snapshot:
    """What a reader reads: the data files of one snapshot (of one AOI's partitions, when asked)."""

    warehouse: Warehouse
    snapshot_id: int | None
    committed: dt.datetime | None
    files: tuple[str, ...]
    #: Whether another engine left row-level deletes: then the files alone are not the rows, and readers go
    #: through pyiceberg's reader (which applies them) instead of reading the files.
    has_deletes: bool
    aoi: str | None

    def arrow_reader(self):  # noqa: ANN201 - pyarrow.RecordBatchReader
        """The snapshot's rows through pyiceberg (deletes applied; any storage pyiceberg reads)."""
        table = open_table(self.warehouse, create=False)
        row_filter = EqualTo("aoi", self.aoi) if self.aoi is not None else AlwaysTrue()
        return table.scan(snapshot_id=self.snapshot_id, row_filter=row_filter).to_arrow_batch_reader()


def snapshot(warehouse: Warehouse, aoi: str | None = None, as_of: dt.datetime | None = None) -> Snapshot:
    """The current snapshot (or the one current at ``as_of``), narrowed to ``aoi``'s partitions."""
    table = open_table(warehouse, create=False)
    if as_of is None:
        snap = table.current_snapshot()
    else:
        snap = table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
        if snap is None:
            first = min((s.timestamp_ms for s in table.metadata.snapshots), default=None)
            raise UserError(
                f"--as_of {as_of.isoformat()}: the scans table has no snapshot that early"
                + (
                    f" (the oldest kept is {dt.datetime.fromtimestamp(first / 1000, dt.timezone.utc).isoformat()})"
                    if first
                    else ""
                )
            )
    if snap is None:
        return Snapshot(warehouse, None, None, (), False, aoi)
    row_filter = EqualTo("aoi", aoi) if aoi is not None else AlwaysTrue()
    tasks = list(table.scan(snapshot_id=snap.snapshot_id, row_filter=row_filter).plan_files())
    return Snapshot(warehouse, snap.snapshot_id, dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, dt.timezone.utc),
                    tuple(sorted(task.file.file_path for task in tasks)), any(task.delete_files for task in tasks), aoi)


def read_arrow(warehouse: Warehouse, aoi: str | None = None, as_of: dt.datetime | None = None):  # noqa: ANN201
    """Every row of a snapshot as one ``pyarrow.Table`` (small tables: tests, the stream's start-up state)."""
    return snapshot(warehouse, aoi, as_of).arrow_reader().read_all()
