"""Scan rows into a real scans table, and back: what tests that build their own scans use.

Rows go in through :func:`pipelines.store.scans.write_rows`, the same commit a scan makes, so every test
reads a real Iceberg snapshot; nothing here writes a data folder by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import shapely

from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import publishing


def complete(row: Mapping, aoi: str, scan_date: dt.date) -> dict:
    """A scan row with the columns a test left out filled as a scan fills them."""
    filled = {"scene_uri": f"/scenes/{row.get('scene_id', 's')}.tif", "scan_id": f"{aoi}:{scan_date}:test",
              "bbox": schema.bbox(shapely.from_wkb(row["geometry"])),
              "mask_status": schema.MASK_ABSENT if row.get("clear_fraction") is None else schema.MASK_READ,
              **{f"{name}_fraction": None for name in ("clear", "cloud", "shadow", "haze")},
              "model_version": "test", **row, "aoi": aoi, "scan_date": scan_date}
    return filled


def write_scans(location: Path | str, partitions: Mapping[tuple[str, dt.date], Sequence[Mapping]],
                bundle: str | None = None) -> str:
    """Commit ``{(aoi, scan date): rows}`` to the scans table of ``location``, one commit per partition, as a
    scan would; returns the location as a string."""
    warehouse = Warehouse(str(location))
    for (aoi, date), rows in partitions.items():
        scans.write_rows(
            warehouse,
            date.isoformat(),
            aoi,
            [complete(r, aoi, date) for r in rows],
            {
                "run_id": publishing.new_run_id(),
                "pipeline": "test",
                "partitions": [f"{date.isoformat()}/{aoi}"],
                "bundle": bundle,
            },
        )
    return str(location)


def copy_scans(source: Path | str, target: Path | str) -> Path:
    """A scans table of its own at ``target`` holding the current rows of ``source``, a commit per partition
    with the facts of the commit that last wrote it: for tests that write into a copy of a module's scans
    (a copied folder still names the source's files, so the tools refuse to write into it)."""
    facts: dict[tuple[str, str], dict] = {}
    for commit in scans.commits(Warehouse(str(source))):
        for partition in commit.partitions:
            facts[partition] = commit.facts
    partitions: dict[tuple[str, str], list[dict]] = {}
    for row in read_rows(source):
        partitions.setdefault((row["scan_date"].isoformat(), row["aoi"]), []).append(row)
    for (date, aoi), rows in sorted(partitions.items()):
        scans.write_rows(Warehouse(str(target)), date, aoi, rows, facts[(date, aoi)])
    return Path(target)


def read_rows(location: Path | str, aoi: str | None = None) -> list[dict]:
    """Every row of the current snapshot."""
    return scans.read_arrow(Warehouse(str(location)), aoi).to_pylist()


def connect(location: Path | str, aoi: str | None = None, **kwargs):
    """:func:`pipelines.analysis.queries.connect` on the current snapshot of ``location``."""
    from pipelines.analysis import queries

    return queries.connect(scans.snapshot(Warehouse(str(location)), aoi), **kwargs)
