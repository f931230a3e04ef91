"""The last step of every pipeline: make what the run wrote visible in one atomic commit, or nothing.

- :class:`CommitPartition`: a batch scan replaces its (scan date, AOI) partition of the scans table with
  the data files it wrote, in one Iceberg commit that carries the run's counts as snapshot properties.
- :class:`CommitWindows`: the streaming scan appends each window's files in one commit.
- :class:`CommitClearings`: ``delineate`` replaces the clearings of the AOIs it delineated in one commit.
- :class:`PublishChips`: ``chip`` switches its folder's manifest to the chips it wrote.

Each runs once, after every file of its run is complete (the file lists arrive as side inputs), and
only when :func:`pipelines.steps.accounting.refusal` lets the run change its output: otherwise it raises
:class:`planet_core.errors.RunFailed` (the job fails, the output is as it was).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from pipelines.steps import accounting
from pipelines.store import clearings, scans
from pipelines.store.catalog import Warehouse
from planet_core import publishing, storage
from planet_core.errors import RunFailed

#: A chip set's manifest, in its folder (:mod:`planet_core.publishing`).
CHIP_MANIFEST = "manifest.json"
#: A run's error lines, in its run folder.
ERRORS = "errors.jsonl"


def _not_a_crash(record: logging.LogRecord) -> bool:
    # Beam logs an exception raised in a step with its traceback before re-raising it to the launcher. A
    # refused run is not a crash: the launcher says why in one line, and that is the whole story.
    return not (record.exc_info and isinstance(record.exc_info[1], RunFailed))


logging.getLogger("apache_beam.runners.common").addFilter(_not_a_crash)

#: The counts a scan's commit carries (snapshot properties) and its manifest reports.
COUNTS = ("enumerated", "skipped", "failed", "out_of_domain", "mask_errors", "skipped_reasons", "failed_reasons")


class CommitPartition(beam.DoFn):
    """The run's summary and its data files -> one commit replacing its partition; yields the run's facts
    with the snapshot id."""

    def __init__(self, warehouse: Warehouse, scan_date: str, aoi: str, facts: dict[str, Any], errors: str) -> None:
        self.warehouse, self.scan_date, self.aoi, self.facts, self.errors = warehouse, scan_date, aoi, facts, errors

    def process(self, summary: dict, files: Sequence[str], _errors: Sequence[str]) -> Iterator[dict]:
        _drop_if_empty(self.errors, summary)
        refused = accounting.refusal(summary, "scan", "inferred")
        if refused:
            raise RunFailed(f"{refused}. The scans table is unchanged" + _error_lines(summary, self.errors))
        facts = {**self.facts, "partitions": [f"{self.scan_date}/{self.aoi}"],
                 "inferred": summary[accounting.WRITTEN], **{key: summary[key] for key in COUNTS},
                 "errors": self.errors if summary["failed"] or summary["mask_errors"] else None,
                 "committed": dt.datetime.now(dt.timezone.utc).isoformat()}
        snapshot_id = scans.replace_partition(self.warehouse, self.scan_date, self.aoi, sorted(files), facts)
        yield {**facts, "snapshot_id": snapshot_id, "files": len(files)}


def _drop_if_empty(errors: str, summary: dict) -> None:
    """The run's error file, written whatever happened, is removed when it holds no line."""
    if not (summary["failed"] or summary["mask_errors"]) and storage.exists(errors):
        storage.delete([errors])


def _error_lines(summary: dict, path: str) -> str:
    return f". The error lines are in {path}" if summary["failed"] else ""


class CommitWindows(beam.DoFn):
    """The Parquet files of one window (all partitions) -> one append commit (a retried window's files are
    already in the table and are not added twice)."""

    def __init__(self, warehouse: Warehouse, facts: dict[str, Any]) -> None:
        self.warehouse, self.facts = warehouse, facts

    def process(self, files: Sequence[str], window=beam.DoFn.WindowParam) -> Iterator[int]:  # noqa: ANN001
        if not files:
            return
        partitions = sorted({"/".join(scans.partition_of(path)) for path in files})
        facts = {**self.facts, "partitions": partitions, "inferred": None, "files_added": len(files),
                 "window": window.start.to_utc_datetime().isoformat() if hasattr(window, "start") else None,
                 "committed": dt.datetime.now(dt.timezone.utc).isoformat()}
        snapshot_id = scans.append_files(self.warehouse, sorted(files), facts)
        if snapshot_id is not None:
            yield snapshot_id


class CommitClearings(beam.DoFn):
    """The run's summary and its data files (one per AOI with clearings) -> one commit replacing the
    clearings of every AOI delineated (an AOI whose events have no clearing left is emptied: that is its
    answer); yields the run's facts with the snapshot id."""

    def __init__(self, warehouse: Warehouse, aois: Sequence[str], facts: dict[str, Any], errors: str) -> None:
        self.warehouse, self.aois, self.facts, self.errors = warehouse, list(aois), facts, errors

    def process(self, summary: dict, files: Sequence[str], _errors: Sequence[str]) -> Iterator[dict]:
        _drop_if_empty(self.errors, summary)
        refused = accounting.refusal(summary, "delineate", "delineated")
        if refused:
            raise RunFailed(f"{refused}. The clearings table is unchanged" + _error_lines(summary, self.errors))
        areas = [area for path in files for area in clearings.areas(path)]
        facts = {**self.facts, "delineated": summary[accounting.WRITTEN], "failed": summary[accounting.FAILED],
                 "enumerated": summary["enumerated"], "failed_reasons": summary["failed_reasons"],
                 "clearings": len(areas), "cleared_ha": round(sum(areas), 3),
                 "errors": self.errors if summary["failed"] else None,
                 "committed": dt.datetime.now(dt.timezone.utc).isoformat()}
        snapshot_id = clearings.replace_aois(self.warehouse, self.aois, sorted(files), facts)
        yield {**facts, "snapshot_id": snapshot_id, "files": len(files)}


class PublishChips(beam.DoFn):
    """The run's summary and its chip files -> the folder's manifest switched to them
    (:func:`planet_core.publishing.publish`); yields the new manifest."""

    def __init__(self, folder: str, run_id: str, run_info: dict[str, Any]) -> None:
        self.folder, self.run_id, self.run_info = folder, run_id, run_info

    def process(self, summary: dict, chip_files: Sequence[str], _errors: Sequence[str]) -> Iterator[dict]:
        errors = storage.join(publishing.run_folder(self.folder, self.run_id), ERRORS)
        _drop_if_empty(errors, summary)
        refused = accounting.refusal(summary, "chip")
        if refused:
            raise RunFailed(f"{refused}. The chip set in {self.folder} is unchanged" + _error_lines(summary, errors))
        listed = sorted(chip_files) + ([errors] if summary["failed"] or summary["mask_errors"] else [])
        manifest = {**self.run_info, **summary, "files": [publishing.relative(self.folder, path) for path in listed]}
        replaced = publishing.publish(self.folder, CHIP_MANIFEST, self.run_id, manifest)
        yield {**manifest, "replaced_run": replaced.get("run_id")}
