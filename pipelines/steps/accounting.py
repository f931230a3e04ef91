"""Every input item ends as written, skipped (with a reason) or failed (with a reason); every output file
is owned by the manifest that lists it.

Pipelines emit one small *outcome* dict per item beside their real output. This module sums outcomes
into the run's manifest and writes failures as ``errors-*.jsonl`` lines.

Publishing a run's files is safe under crashes and concurrency:

1. A run writes everything under ``<folder>/_staging/<run_id>/`` with names ending in ``.staged``: no
   reader (``*.parquet``, ``chips-*.tfrecord``, BigQuery external tables) picks them up, and a killed
   run leaves only such files, which a later run of the folder deletes once they are older than
   :data:`STALE_HOURS`.
2. When every file is complete, :class:`Publish` moves them into ``<folder>`` under their final names
   and swaps the manifest to list them (:func:`planet_model.storage.swap`: a generation precondition on
   Cloud Storage, a lock locally).
3. It then deletes exactly the files the manifest it replaced listed: two concurrent runs of one folder
   each delete only what they replaced, so the last to swap wins and never nobody, and files the tools
   did not write are never touched. The only other files it deletes are its own kinds' (``part-*``,
   ``chips-*``, ``errors-*``) that no manifest lists and that are older than :data:`STALE_HOURS`: what
   a run killed between moving its files in and swapping the manifest left.
"""

from __future__ import annotations

import json
from collections import Counter
import logging
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam

from planet_model import storage

log = logging.getLogger(__name__)

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"
STAGING = "_staging"
#: Suffix of a file not yet published: what readers never read.
STAGED = ".staged"
#: Staged files of another run older than this are what a killed run left; younger ones may be a
#: concurrent run's, and are left alone.
STALE_HOURS = 24
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
                 keep: Callable[[Any, Any], Iterable], min_clear_fraction: float | None = None) -> Iterator:
    """Read a block of tiles of one scene; tiles that fail, hold too little data or (with
    ``min_clear_fraction``) are too cloudy by their UDM2 become outcomes.

    Yields what ``keep(reader, read)`` yields for each kept tile (``read`` a
    :class:`~pipelines.geo.scenes.TileRead`) and a ``TaggedOutput(OUTCOMES, outcome)`` for each other one.
    """
    try:
        reader = open_reader()
    except Exception as error:  # noqa: BLE001 - the scene changed or vanished since enumeration
        for tile in tiles:
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                        f"read: {error}"))
        return
    with reader:
        for read in reader.read_tiles(tiles):
            tile = read.tile
            if read.error is not None:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri, tile.tile_id,
                                                            f"read: {read.error}", reader.window_of(tile)))
            elif read.valid_fraction < min_valid_fraction:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                    SKIPPED, source.scene_id, source.uri, tile.tile_id,
                    f"nodata: valid fraction {read.valid_fraction:.3f} below {min_valid_fraction}"))
            elif min_clear_fraction is not None and read.mask is not None and read.mask.clear < min_clear_fraction:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                    SKIPPED, source.scene_id, source.uri, tile.tile_id,
                    f"cloudy: UDM2 clear fraction {read.mask.clear:.3f} below {min_clear_fraction}"))
            else:
                yield from keep(reader, read)


def fail_if_all_failed(manifest: dict, what: str, folder: str) -> None:
    """A run in which items were enumerated and every one failed is a failed run: exit 1 with the
    commonest reasons (a partial failure is a success with error lines)."""
    if manifest["enumerated"] and manifest["failed"] == manifest["enumerated"]:
        reasons = sorted(manifest["failed_reasons"].items(), key=lambda kv: -kv[1])[:3]
        errors = [p for p in manifest_paths(folder, manifest) if posixpath.basename(p).startswith("errors-")]
        raise SystemExit(f"{what}: every one of {manifest['enumerated']} items failed; commonest reasons: "
                         + "; ".join(f"{reason} ({n})" for reason, n in reasons)
                         + f". The error lines are in {', '.join(errors)}")


def _reason_key(reason: str) -> str:
    """Group reasons by their kind (the text before the first colon), so counts stay readable."""
    return reason.split(":", 1)[0].strip()


def staging(folder: str, run_id: str) -> str:
    """Where run ``run_id`` writes the files it will publish in ``folder``."""
    return storage.join(folder, STAGING, run_id)


class Account(beam.PTransform):
    """Outcomes -> staged ``errors-<run_id>-*.jsonl`` (failed items, and kept tiles whose UDM2 could not be
    used), and a summary PCollection of one dict."""

    def __init__(self, folder: str, run_id: str) -> None:
        super().__init__()
        self.folder, self.run_id = folder, run_id

    def expand(self, outcomes: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        errors = (
            outcomes
            | "OnlyFailures" >> beam.Filter(lambda o: o["status"] == FAILED or bool(o.get("mask_error")))
            | "ErrorLines" >> beam.Map(lambda o: json.dumps(o, sort_keys=True))
            | "WriteErrors" >> beam.io.WriteToText(storage.join(staging(self.folder, self.run_id), f"errors-{self.run_id}"),
                                                   file_name_suffix=".jsonl" + STAGED, num_shards=1)
        )
        summary = outcomes | "Summarize" >> beam.CombineGlobally(SummarizeFn())
        return summary, errors


class Publish(beam.DoFn):
    """Moves a run's staged files into place, swaps the manifest to them, deletes what it replaced.

    Runs once, after every output file is complete (their lists arrive as side inputs), so a failed run
    never touches the previous good output. See the module docstring for why this is safe.
    """

    def __init__(self, folder: str, manifest_name: str, run_info: dict, written_as: str = WRITTEN) -> None:
        self.folder, self.manifest_name, self.run_info = folder, manifest_name, run_info
        self.written_as = written_as  # what "written" is called in this pipeline's manifest

    def process(self, summary: dict, *staged_lists: list[str]) -> Iterable[dict]:
        moves = [(path, storage.join(self.folder, posixpath.basename(path)[: -len(STAGED)]))
                 for files in staged_lists for path in files]
        storage.rename(moves)
        # Names, not paths: a copied or moved folder's manifest still describes the folder it is in, and a
        # later run never reaches outside it.
        manifest = {**self.run_info, **summary, self.written_as: summary[WRITTEN],
                    "files": sorted(posixpath.basename(final) for _, final in moves)}
        text = json.dumps(manifest, indent=2).encode()
        replaced = storage.swap(storage.join(self.folder, self.manifest_name), lambda _: text)
        previous = json.loads(replaced) if replaced else {}
        ours = set(manifest_paths(self.folder, manifest))
        gone = [path for path in manifest_paths(self.folder, previous) if path not in ours and storage.exists(path)]
        storage.delete(gone)
        storage.delete_tree(staging(self.folder, self.run_info["run_id"]))
        left = clear_stale_staging(self.folder) + clear_orphans(self.folder, sorted(ours), manifest["files"])
        log.info("%s: published %d files, removed %d of the run it replaced (%s) and %d left by killed runs",
                 self.folder, len(moves), len(gone), previous.get("run_id"), left)
        yield {**manifest, "replaced_run": previous.get("run_id"), "files_removed": len(gone)}


#: The name of a file a run publishes: ``<kind>-<run id>-<shard>-of-<shards><suffix>``, the run id being
#: :func:`pipelines.steps.options.run_id`'s. Only such names can be a killed run's orphans.
RUN_FILE = re.compile(r"^(?P<kind>[a-z]+)-\d{8}T\d{6}-[0-9a-f]{6}-\d{5}-of-\d{5}\.")


def clear_orphans(folder: str, listed: Sequence[str], names: Sequence[str], hours: float = STALE_HOURS) -> int:
    """Delete run files of this pipeline's kinds in ``folder`` that no manifest lists and that are older
    than ``hours``: what a run killed while publishing moved in before it could swap the manifest. Only
    names of the run-file form count (not another person's ``chips-notes.tfrecord``, nor the streaming
    scan's ``part-stream-*`` files); the kinds (``part``, ``chips``, ``errors``) are those of ``names``."""
    kinds = {match["kind"] for name in names if (match := RUN_FILE.match(name))}
    cutoff = time.time() - hours * 3600
    orphans = [path for path, modified in storage.modified(storage.join(folder, "*"))
               if (match := RUN_FILE.match(posixpath.basename(path))) and match["kind"] in kinds
               and path not in listed and modified < cutoff]
    storage.delete(orphans)
    return len(orphans)


def manifest_paths(folder: str, manifest: dict) -> list[str]:
    """The files a manifest in ``folder`` lists, as paths in ``folder``. Manifests list file names;
    older ones listed full paths, of which only those inside ``folder`` are taken, so that no run ever
    deletes outside the folder it writes."""
    prefix = folder.rstrip("/") + "/"
    paths = []
    for entry in manifest.get("files", []):
        if "/" not in entry:
            paths.append(storage.join(folder, entry))
        elif entry.startswith(prefix) and "/" not in entry[len(prefix):]:
            paths.append(entry)
    return paths


def clear_stale_staging(folder: str, hours: float = STALE_HOURS) -> int:
    """Delete what killed runs left in ``folder``'s staging area (runs whose newest file is older than
    ``hours``); return how many runs were cleared."""
    runs: dict[str, float] = {}
    prefix = storage.join(folder, STAGING) + "/"
    for path, modified in storage.modified(storage.join(folder, STAGING, "**")):
        run = path[len(prefix):].split("/", 1)[0]
        runs[run] = max(runs.get(run, 0.0), modified)
    stale = [run for run, newest in runs.items() if newest < time.time() - hours * 3600]
    for run in stale:
        storage.delete_tree(storage.join(folder, STAGING, run))
    return len(stale)
