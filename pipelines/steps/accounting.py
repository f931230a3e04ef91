"""Every input item ends as written, skipped (with a reason) or failed (with a reason).

Pipelines emit one small *outcome* dict per item beside their real output. This module sums outcomes
into the run's summary (the counts a scan's commit carries as snapshot properties, a chip set's
manifest) and writes failures as error lines. Whether a run may change its output at all is
:func:`refusal`'s rule: a run that wrote nothing, or whose every item failed, changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam

log = logging.getLogger(__name__)

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"
#: The tagged output that carries outcomes beside each step's main output.
OUTCOMES = "outcomes"


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
        acc[("uri", item["scene_id"], item["uri"])] = 1
        if item.get("out_of_domain"):
            acc[("total", "out_of_domain")] += 1
        if item.get("mask_error"):
            acc[("total", "mask_errors")] += 1
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
                                   "out_of_domain": acc[("total", "out_of_domain")],
                                   # tiles kept without cloud fractions: their UDM2 was there but unusable
                                   "mask_errors": acc[("total", "mask_errors")],
                                   "skipped_reasons": {}, "failed_reasons": {}, "scenes": {},
                                   # where each scene was read (the report's before/after pictures)
                                   "scene_uris": {}}
        for key, n in sorted(acc.items(), key=lambda kv: str(kv[0])):
            if key[0] == "reason":
                summary[f"{key[1]}_reasons"][key[2]] = n
            elif key[0] == "scene":
                summary["scenes"].setdefault(key[1], {s: 0 for s in (WRITTEN, SKIPPED, FAILED)})[key[2]] = n
        summary["scene_uris"] = {key[1]: key[2] for key in sorted(acc) if key[0] == "uri"}
        return summary


def screen_tiles(source: Any, tiles: Sequence[Any], open_reader: Callable[[], Any], min_valid_fraction: float,
                 keep: Callable[[Any, Any], Iterable], skip_cloudier_than: float | None = None,
                 fractions: bool = True, threads: int = 1) -> Iterator:
    """Read a block of tiles of one scene; tiles that fail, hold too little data or (with
    ``skip_cloudier_than``) have a larger share that their cloud mask does not call clear become outcomes.
    Without ``fractions`` (and ``skip_cloudier_than``) the cloud mask is not read; ``threads`` read at once.

    Yields what ``keep(reader, read)`` yields for each kept tile (``read`` a
    :class:`~pipelines.sources.reader.TileRead`) and a ``TaggedOutput(OUTCOMES, outcome)`` for each other one.
    """
    try:
        reader = open_reader()
    except Exception as error:  # noqa: BLE001 - the scene changed or vanished since enumeration
        for tile in tiles:
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                        f"read: {error}"))
        return
    with reader:
        for read in reader.read_tiles(tiles, fractions or skip_cloudier_than is not None, threads):
            tile = read.tile
            if read.error is not None:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                            f"read: {read.error}", reader.window_of(tile)))
            elif read.valid_fraction < min_valid_fraction:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                    SKIPPED, source.scene_id, source.uri, tile.tile_id,
                    f"nodata: valid fraction {read.valid_fraction:.3f} below {min_valid_fraction}"))
            elif skip_cloudier_than is not None and read.mask is not None and 1 - read.mask.clear > skip_cloudier_than:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                    SKIPPED, source.scene_id, source.uri, tile.tile_id,
                    f"cloudy: {reader.mask.kind.upper()} says {1 - read.mask.clear:.3f} of it is not clear, more than "
                    f"{skip_cloudier_than}"))
            else:
                yield from keep(reader, read)


def _reason_key(reason: str) -> str:
    """Group reasons by their kind (the text before the first colon), so counts stay readable."""
    return reason.split(":", 1)[0].strip()


def refusal(summary: dict, what: str, written: str = WRITTEN) -> str | None:
    """Why a run must leave its output as it was, or None. A run that enumerated items and failed every one
    is a failed run; so is a run that wrote nothing (no scene touched the AOI, every tile was skipped):
    replacing good output with nothing is never what a run is for. A partial failure is a success with
    error lines."""
    enumerated, failed = summary["enumerated"], summary[FAILED]
    reasons = sorted({**summary["failed_reasons"], **summary["skipped_reasons"]}.items(), key=lambda kv: -kv[1])[:3]
    commonest = "; commonest reasons: " + "; ".join(f"{reason} ({n})" for reason, n in reasons) if reasons else ""
    if enumerated and failed == enumerated:
        return f"{what}: every one of {enumerated} items failed{commonest}"
    if not summary[WRITTEN]:
        if not enumerated:
            return f"{what}: no tile to read (the scenes touch no tile of the area asked for); nothing was {written}"
        return f"{what}: nothing was {written} ({summary[SKIPPED]} skipped, {failed} failed of {enumerated}){commonest}"
    return None


class Account(beam.PTransform):
    """Outcomes -> error lines in the file ``errors_path`` (failed items, and kept tiles whose cloud mask
    could not be read), and a summary PCollection of one dict."""

    def __init__(self, errors_path: str) -> None:
        super().__init__()
        self.errors_path = errors_path

    def expand(self, outcomes: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        errors = (
            outcomes
            | "OnlyFailures" >> beam.Filter(lambda o: o["status"] == FAILED or bool(o.get("mask_error")))
            | "ErrorLines" >> beam.Map(lambda o: json.dumps(o, sort_keys=True))
            | "WriteErrors" >> beam.io.WriteToText(self.errors_path, num_shards=1, shard_name_template="")
        )
        summary = outcomes | "Summarize" >> beam.CombineGlobally(SummarizeFn())
        return summary, errors


