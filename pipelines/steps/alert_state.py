"""Alerts from per-tile Beam state: the streaming scan's change detection, by the batch rules.

Each tile (keyed by AOI and tile id) keeps its best observation per date in Beam state, which Dataflow
checkpoints; new observations wait ``settle`` of event time so that scenes of one place arriving out of
order are put in acquisition order before :func:`pipelines.analysis.rules.alerts` runs on the history.

A stream that starts over a scans table that already holds observations (batch scans, an earlier stream)
starts from them: :class:`ReadHistory` reads the table's current snapshot of the watched AOIs once, and a
tile's first new row brings its history into its state, with the alerts that history already raised
counted as emitted (they are the batch report's; the stream emits what changes from there).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagRuntimeState,
    BagStateSpec,
    ReadModifyWriteRuntimeState,
    ReadModifyWriteStateSpec,
    RuntimeTimer,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Duration, Timestamp

from pipelines.analysis import rules
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from planet_core.errors import UserError


class TileAlerts(beam.DoFn):
    """Keyed by ``aoi|tile_id``: keeps the tile's observations and emits each alert when it appears and
    whenever its confidence level or status changes.

    New rows wait in ``pending`` until the event-time timer (last arrival + settle) fires, then join the
    tile's history (the best row per date, as :func:`pipelines.analysis.rules.observations` chooses; a scene
    read again replaces its earlier row) and the batch rule runs over the whole history. The emitted rows
    are a log of alert states with the batch rules' ``alert_id``: the latest (``last_judged``) row per id is
    the alert as the batch report has it.
    The rules run in Python here, not in SQL, because they run per tile inside Beam state.
    """

    PENDING = BagStateSpec("pending", PickleCoder())
    HISTORY = ReadModifyWriteStateSpec("history", PickleCoder())
    EMITTED = ReadModifyWriteStateSpec("emitted", PickleCoder())
    SEEDED = ReadModifyWriteStateSpec("seeded", PickleCoder())
    SETTLE = TimerSpec("settle", TimeDomain.WATERMARK)

    def __init__(self, settle_minutes: float, min_clear_fraction: float = rules.MIN_CLEAR_FRACTION,
                 highest_probability: float = rules.HIGHEST_PROBABILITY) -> None:
        self.settle = Duration(seconds=round(settle_minutes * 60))
        self.min_clear_fraction = min_clear_fraction
        self.highest_probability = highest_probability

    def process(self, keyed: tuple, known: dict, timestamp: Timestamp = beam.DoFn.TimestampParam,
                pending: BagRuntimeState = beam.DoFn.StateParam(PENDING),
                history: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(HISTORY),
                emitted: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(EMITTED),
                seeded: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(SEEDED),
                settle: RuntimeTimer = beam.DoFn.TimerParam(SETTLE)) -> Iterable:
        """A new row waits for the settle timer; a tile's first one brings in what the table knew of it
        (``known``: rows per ``aoi|tile_id`` from :class:`ReadHistory`)."""
        if not seeded.read():
            before = list(known.get(keyed[0], []))
            if before:
                history.write(before)
                emitted.write({a.alert_id: (a.confidence, a.status) for a in self._alerts(rules.observations(before))})
            seeded.write(True)
        pending.add(keyed[1])
        settle.set(timestamp + self.settle)
        return []

    def _alerts(self, observations: list) -> list[rules.Alert]:
        return rules.alerts(observations, min_clear_fraction=self.min_clear_fraction,
                            highest_probability=self.highest_probability)

    @on_timer(SETTLE)
    def flush(self, pending: BagRuntimeState = beam.DoFn.StateParam(PENDING),
              history: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(HISTORY),
              emitted: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(EMITTED)) -> Iterator[rules.Alert]:
        rows = _newest_reading((history.read() or []) + sorted(pending.read(), key=_content))
        pending.clear()
        best = rules.observations(rows)
        kept = {(o.scan_date, o.scene_id) for o in best}
        history.write([r for r in rows if (r["scan_date"], r["scene_id"]) in kept])
        states = dict(emitted.read() or {})
        for alert in self._alerts(best):
            state = (alert.confidence, alert.status)
            if states.get(alert.alert_id) != state:
                states[alert.alert_id] = state
                yield alert
        emitted.write(states)


def _newest_reading(rows: list[dict]) -> list[dict]:
    """One row per scan date and scene, the last of ``rows``: a scene read again (re-uploaded, a new object
    generation) replaces its earlier reading, as a batch re-scan replaces its partition."""
    return list({(row["scan_date"], row["scene_id"]): row for row in rows}.values())


def _content(row: dict) -> str:
    """An order for rows that arrived in one settle time: a bag has none, and the result must not depend on it."""
    return json.dumps(row, sort_keys=True, default=str)


def keyed_by_tile(row: dict) -> tuple[str, dict]:
    """A row as :func:`pipelines.analysis.rules.observations` reads it, keyed by AOI and tile."""
    return f"{row['aoi']}|{row['tile_id']}", row


class ReadHistory(beam.DoFn):
    """Once, at the stream's start: the rows of the watched AOIs in the scans table's current snapshot,
    acquired no earlier than ``days`` before now, keyed as :func:`keyed_by_tile` keys them (a table not
    made yet: nothing)."""

    def __init__(self, warehouse: Warehouse, aois: Iterable[str], days: float) -> None:
        self.warehouse, self.aois, self.days = warehouse, tuple(aois), days

    def process(self, _: object) -> Iterator[tuple[str, dict]]:
        if not self.warehouse.exists():
            return
        since = dt.date.today() - dt.timedelta(days=self.days)
        for aoi in self.aois:
            try:
                reader = scans.snapshot(self.warehouse, aoi).arrow_reader()
            except UserError:  # no table yet: the stream starts from nothing
                return
            for batch in reader:
                for row in batch.to_pylist():
                    if row["scan_date"] >= since:
                        yield keyed_by_tile(row)
