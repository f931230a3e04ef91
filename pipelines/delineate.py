"""Delineate: the cleared polygons of every event of the scans, committed to the clearings table.

    planet-tiles delineate --scans gs://b/scans [--aoi xingu] [--scenes 'gs://b/moved/*.tif'] [Beam flags]

The launcher reads one snapshot of the scans table and finds the alerts and their events exactly as
``report`` does (the same judging and grouping flags). Each event is one work item: its alert tiles and, for
each pair of dates its alerts compared (the date before and the detection: an event that grew over later
scans has several), the scenes of those dates that cover the frame (where the scans read them, or the items
of ``--scenes``/``--stac`` of the same scene id). Workers delineate each event
(:mod:`pipelines.analysis.clearings`) and write one GeoParquet file per AOI into the warehouse; then one
Iceberg commit replaces the clearings of every AOI delineated with them (:mod:`pipelines.store.clearings`).
The commit records, per AOI, the scans commit the clearings come from and the options used, so that
``report`` uses them only for the same alerts (else it delineates its events itself). An event whose scenes
cannot be read is a counted error line; a run in which every event failed commits nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator, Sequence

import apache_beam as beam

from pipelines import sources
from pipelines.analysis import clearings, event_images, events, queries
from pipelines.analysis.clearings import ClearingError, Work
from pipelines.sources.base import SceneItem
from pipelines.sources.masks import AUTO
from pipelines.sources.reader import ReadOptions
from pipelines.steps import accounting
from pipelines.steps.commits import CommitClearings
from pipelines.steps.options import parse, pipeline_options, submitted_only
from pipelines.store import clearings as stored
from pipelines.store import scans
from planet_core import commands, logs, publishing
from planet_core.errors import RunFailed, UserError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("delineate", __doc__)
    queries.add_snapshot_arguments(p)
    p.add_argument("--aoi", help="only this AOI (default: every AOI of the scans)")
    queries.add_judging_arguments(p)
    events.add_arguments(p)
    clearings.add_arguments(p)
    sources.add_arguments(p, dates=False, product=False, cloud_mask=False)
    return p


def check(args: argparse.Namespace) -> None:
    queries.check_judging_arguments(args)
    events.check_arguments(args)
    clearings.check_arguments(args)


def plan(args: argparse.Namespace, snapshot: scans.Snapshot) -> tuple[list[Work], dict[str, int]]:
    """The work items of every event of the snapshot, and each AOI's scans version (the newest scans commit
    that wrote it) they come from."""
    con = queries.connect(snapshot, materialize=True)
    dates = queries.scan_dates(con)
    if not dates:
        raise UserError(f"--scans {args.scans}: no scan rows" + (f" for --aoi {args.aoi}" if args.aoi else ""))
    found = queries.alerts(con, dates, args.min_clear_fraction, args.highest_probability)
    grouped = events.events(found, args.event_window_days, args.min_event_ha)
    items = event_images.scene_items(con, sources.discover(args))
    aois = [a for (a,) in con.execute(f"SELECT DISTINCT aoi FROM {queries.DATASET}.observations ORDER BY aoi")
            .fetchall()]
    versions = {aoi: scans.aoi_version(snapshot.warehouse, aoi, snapshot.snapshot_id) for aoi in aois}
    return clearings.plan(con, grouped, found, items), versions


class DelineateEvents(beam.DoFn):
    """A :class:`Work` -> its clearings as table rows, and one outcome (delineated, or failed with why)."""

    def __init__(self, read: ReadOptions, min_clearing_ha: float) -> None:
        self.read, self.min_clearing_ha = read, min_clearing_ha

    def process(self, work: Work) -> Iterator:
        """The outcome names the scene of detection of the event's first comparison, or of the one that
        failed."""
        event = work.event

        def where(scene: SceneItem | None) -> tuple[str, str]:
            return (scene.scene_id, scene.uri) if scene else (event.detected_scene, "")

        try:
            found = clearings.delineate(work, self.read, self.min_clearing_ha)
        except ClearingError as error:
            yield beam.pvalue.TaggedOutput(accounting.OUTCOMES, accounting.outcome(
                accounting.FAILED, *where(error.scene), event.event_id, f"delineate: {error}"))
            return
        for clearing in found:
            yield clearings.row(clearing)
        first = work.comparisons[0].after if work.comparisons else ()
        yield beam.pvalue.TaggedOutput(accounting.OUTCOMES, accounting.outcome(
            accounting.WRITTEN, *where(first[0] if first else None), event.event_id, clearings=len(found)))


class WriteAoi(beam.DoFn):
    """``(aoi, rows)`` -> the AOI's one data file (its path)."""

    def __init__(self, warehouse: scans.Warehouse, run_id: str) -> None:
        self.warehouse, self.run_id = warehouse, run_id

    def process(self, element: tuple[str, Sequence[dict]]) -> Iterator[str]:
        aoi, rows = element
        yield stored.write_aoi(self.warehouse, aoi, self.run_id, sorted(rows, key=lambda r: r["clearing_id"]))


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Delineate and commit; return the commit's facts (counts, snapshot id)."""
    args, beam_args = parse(build_parser(), argv)
    check(args)
    snapshot = queries.open_snapshot(args, args.aoi)
    works, versions = plan(args, snapshot)
    if not works:
        log.warning("no events in the scans%s: nothing to delineate; the clearings table is unchanged",
                    f" of {args.aoi}" if args.aoi else "")
        return {"events": 0, "clearings": 0, "committed": False}
    warehouse = snapshot.warehouse
    this_run = publishing.new_run_id()
    errors = scans.errors_path(warehouse, this_run)
    aois = sorted({w.event.aoi for w in works})
    facts = {"pipeline": "delineate", "run_id": this_run, "aois": aois,
             "scans_versions": {aoi: versions[aoi] for aoi in aois}, "scans_snapshot": snapshot.snapshot_id,
             "delineation": clearings.options_of(args), "events": len(works),
             "started": dt.datetime.now(dt.timezone.utc).isoformat(),
             "options": {k: v for k, v in vars(args).items() if v is not None}, "beam_args": list(beam_args)}
    read = dataclasses.replace(sources.read_options(args), cloud_mask=AUTO)
    options = pipeline_options(beam_args, save_main_session)
    try:
        with beam.Pipeline(options=options) as pipeline:
            delineated = (pipeline | "Events" >> beam.Create(works) | "Spread" >> beam.Reshuffle()
                          | "Delineate" >> beam.ParDo(DelineateEvents(read, args.min_clearing_ha))
                          .with_outputs(accounting.OUTCOMES, main="rows"))
            written = (delineated.rows | "ByAoi" >> beam.Map(lambda r: (r["aoi"], r))
                       | "GroupAoi" >> beam.GroupByKey() | "WriteAoi" >> beam.ParDo(WriteAoi(warehouse, this_run)))
            summary, error_files = delineated[accounting.OUTCOMES] | "Account" >> accounting.Account(errors)
            _ = summary | "Commit" >> beam.ParDo(CommitClearings(warehouse, aois, facts, errors),
                                                 beam.pvalue.AsList(written), beam.pvalue.AsList(error_files))
    except Exception as error:
        raise RunFailed.of(error, "delineate", "the clearings table",
                           scans.committed_before_failing(warehouse, this_run, stored.TABLE)) from error
    if submitted_only(options):
        return {"submitted": True, "scans": args.scans}
    committed = scans.run_commit(warehouse, this_run, stored.TABLE)
    if committed is None:
        raise RunFailed(f"delineate: run {this_run} finished without a commit in {args.scans}; the clearings table "
                        "is unchanged")
    result = {**committed.facts, "snapshot_id": committed.snapshot_id}
    if result["failed"]:
        log.warning("%d of %d events could not be delineated; their error lines are in %s", result["failed"],
                    result["enumerated"], result["errors"])
    return result


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    result = run(argv)
    print(json.dumps({k: result[k] for k in ("events", "delineated", "failed", "clearings", "cleared_ha", "aois",
                                             "snapshot_id", "errors", "submitted") if result.get(k) is not None}))


if __name__ == "__main__":
    main()
