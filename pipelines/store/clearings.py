"""The clearings: an Apache Iceberg table, ``planet_tiles.clearings``, beside the scans in their warehouse.

    <warehouse>/clearings/metadata/...                the table's metadata
    <warehouse>/clearings/data/aoi=A/part-<run>.parquet one file per AOI and run (GeoParquet)

``planet-tiles delineate`` writes one file per AOI it delineated, then :func:`replace_aois` makes them the
whole of those AOIs' clearings in one commit, whose snapshot properties say which scans snapshot and which
judging options the clearings come from (a reader uses them only with alerts of that same snapshot). A
failed or killed run commits nothing, and its files are in no snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo, In

from pipelines.store import scans, schema
from pipelines.store.catalog import NAMESPACE, Warehouse
from planet_core import storage

TABLE = "clearings"
IDENTIFIER = f"{NAMESPACE}.{TABLE}"


def data_path(warehouse: Warehouse, aoi: str, run_id: str) -> str:
    """The one data file of an AOI's clearings a run writes."""
    return warehouse.path(TABLE, "data", f"aoi={aoi}", f"part-{run_id}.parquet")


def write_aoi(warehouse: Warehouse, aoi: str, run_id: str, rows: Sequence[dict]) -> str:
    """``rows`` (clearings of one AOI) as its data file; the file's path (not yet in any snapshot)."""
    path = data_path(warehouse, aoi, run_id)
    storage.write_bytes(path, schema.parquet_bytes(rows, schema.CLEARING_COLUMNS))
    return path


def areas(path: str) -> list[float]:
    """The ``area_ha`` of every clearing in one data file (a run's counts)."""
    return pq.read_table(pa.BufferReader(storage.read_bytes(path)), columns=["area_ha"]).column(0).to_pylist()


def replace_aois(warehouse: Warehouse, aois: Sequence[str], files: Sequence[str], facts: Mapping[str, Any]) -> int:
    """Make ``files`` the whole of the clearings of ``aois`` in one commit carrying ``facts``; return its
    snapshot id (:func:`pipelines.store.scans.replace`: retried, never twice, the last writer wins)."""
    return scans.replace(warehouse, files, facts, In("aoi", set(aois)), f"the clearings of {', '.join(aois)}",
                         name=TABLE)


def latest(warehouse: Warehouse, aoi: str) -> tuple[scans.Commit, pa.Table] | None:
    """The newest commit that delineated ``aoi`` and that AOI's clearings in the current snapshot, or
    ``None`` when the table or the AOI is not there."""
    if not warehouse.exists():
        return None
    try:
        table = warehouse.open().load_table(IDENTIFIER)
    except NoSuchTableError:
        return None
    commit = next((c for c in scans.commits_of(table) if aoi in c.facts.get("aois", [])), None)
    if commit is None:
        return None
    rows = table.scan(row_filter=EqualTo("aoi", aoi)).to_arrow()
    return commit, rows
