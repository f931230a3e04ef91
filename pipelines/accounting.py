"""Every input item ends as written, skipped (with a reason) or failed (with a reason).

Pipelines emit one small *outcome* dict per item beside their real output. This module sums outcomes
into the run's manifest, writes failures as ``errors-*.jsonl`` lines, and, once the real output is
written, replaces the previous run's files (so a re-run leaves no duplicates and no stale shards).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam

from pipelines import storage

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"


def outcome(status: str, scene_id: str, uri: str, item: str | None = None, reason: str | None = None,
            window: Sequence[int] | None = None, **extra: Any) -> dict:
    """One item's fate. ``item`` is a tile or image id; ``None`` means the whole scene failed."""
    record = {"status": status, "scene_id": scene_id, "uri": uri, "item": item, "reason": reason,
              "window": list(window) if window is not None else None}
    record.update(extra)
    return record


class SummarizeFn(beam.CombineFn):
    """Counts outcomes: totals, reasons, and per-scene totals."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, item: dict) -> Counter:
        status = item["status"]
        acc[("total", status)] += 1
        acc[("scene", item["scene_id"], status)] += 1
        if item["reason"] and status != WRITTEN:
            acc[("reason", status, _reason_key(item["reason"]))] += 1
        return acc

    def merge_accumulators(self, accs: Iterable[Counter]) -> Counter:
        total: Counter = Counter()
        for acc in accs:
            total.update(acc)
        return total

    def extract_output(self, acc: Counter) -> dict:
        counts = {s: acc[("total", s)] for s in (WRITTEN, SKIPPED, FAILED)}
        summary: dict[str, Any] = {"enumerated": sum(counts.values()), **counts,
                                   "skipped_reasons": {}, "failed_reasons": {}, "scenes": {}}
        for key, n in sorted(acc.items(), key=lambda kv: str(kv[0])):
            if key[0] == "reason":
                summary[f"{key[1]}_reasons"][key[2]] = n
            elif key[0] == "scene":
                summary["scenes"].setdefault(key[1], {s: 0 for s in (WRITTEN, SKIPPED, FAILED)})[key[2]] = n
        return summary


def screen_tiles(source: Any, tiles: Sequence[Any], open_reader: Callable[[], Any], min_valid_fraction: float,
                 tag: str, keep: Callable[[Any, Any, Any, float], Iterable]) -> Iterator:
    """Read a block of tiles of one scene; tiles that fail or hold too little data become outcomes.

    Yields what ``keep(reader, tile, image, valid_fraction)`` yields for each kept tile and a
    ``TaggedOutput(tag, outcome)`` for each other one, so the chip and scan readers share one set of rules.
    """
    try:
        reader = open_reader()
    except Exception as error:  # noqa: BLE001 - the scene changed or vanished since enumeration
        for tile in tiles:
            yield beam.pvalue.TaggedOutput(tag, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                        f"read: {error}"))
        return
    with reader:
        for tile, image, valid, error in reader.read_tiles(tiles):
            if error is not None:
                yield beam.pvalue.TaggedOutput(tag, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                            f"read: {error}", reader.window_of(tile)))
            elif valid < min_valid_fraction:
                yield beam.pvalue.TaggedOutput(tag, outcome(
                    SKIPPED, source.scene_id, source.uri, tile.tile_id,
                    f"nodata: valid fraction {valid:.3f} below {min_valid_fraction}"))
            else:
                yield from keep(reader, tile, image, valid)


def _reason_key(reason: str) -> str:
    """Group reasons by their kind (the text before the first colon), so counts stay readable."""
    return reason.split(":", 1)[0].strip()


class Account(beam.PTransform):
    """Outcomes -> ``errors-<run_id>-*.jsonl``, and a summary PCollection of one dict."""

    def __init__(self, prefix: str, run_id: str) -> None:
        super().__init__()
        self.prefix, self.run_id = prefix, run_id

    def expand(self, outcomes: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        errors = (
            outcomes
            | "OnlyFailures" >> beam.Filter(lambda o: o["status"] == FAILED)
            | "ErrorLines" >> beam.Map(lambda o: json.dumps(o, sort_keys=True))
            | "WriteErrors" >> beam.io.WriteToText(storage.join(self.prefix, f"errors-{self.run_id}"),
                                                   file_name_suffix=".jsonl", num_shards=1)
        )
        summary = outcomes | "Summarize" >> beam.CombineGlobally(SummarizeFn())
        return summary, errors


class Finalize(beam.DoFn):
    """Writes the manifest and deletes what earlier runs left under the same prefix.

    Runs once, after the outputs are final (their file lists arrive as side inputs), so that a failed
    run never deletes the previous good output.
    """

    def __init__(self, prefix: str, manifest_name: str, patterns: Sequence[str], run_info: dict,
                 written_as: str = WRITTEN) -> None:
        self.prefix, self.manifest_name = prefix, manifest_name
        self.patterns, self.run_info = list(patterns), run_info
        self.written_as = written_as  # what "written" is called in this pipeline's manifest

    def process(self, summary: dict, *written_lists: list[str]) -> Iterable[dict]:
        keep = {path for files in written_lists for path in files}
        stale = [path for pattern in self.patterns for path in storage.glob(storage.join(self.prefix, pattern))
                 if path not in keep]
        storage.delete(stale)
        summary = {**summary, self.written_as: summary[WRITTEN]}
        manifest = {**self.run_info, **summary,
                    "files": sorted(storage.glob(storage.join(self.prefix, p)) for p in self.patterns)}
        manifest["files"] = sorted(path for group in manifest["files"] for path in group)
        manifest["stale_files_removed"] = len(stale)
        storage.write_text(storage.join(self.prefix, self.manifest_name), json.dumps(manifest, indent=2))
        yield manifest
