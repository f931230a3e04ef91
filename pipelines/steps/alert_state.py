"""Alerts from per-tile Beam state: the streaming scan's change detection, by the batch rules.

Each tile (keyed by AOI and tile id) keeps its best observation per date in Beam state, which Dataflow
checkpoints; new observations wait ``settle`` of event time so that scenes of one place arriving out of
order are put in acquisition order before :func:`pipelines.analysis.rules.alerts` runs on the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration

from pipelines.analysis import rules


class TileAlerts(beam.DoFn):
    """Keyed by ``aoi|tile_id``: keeps the tile's observations and emits each alert when it appears and
    whenever its confidence level or status changes.

    New rows wait in ``pending`` until the event-time timer (last arrival + settle) fires, then join the
    tile's history (the best row per date, as :func:`pipelines.analysis.rules.observations` chooses) and the
    batch rule runs over the whole history. The emitted rows are a log of alert states with the batch
    rules' ``alert_id``: the latest (``last_judged``) row per id is the alert as the batch report has it.
    The rules run in Python here, not in SQL, because they run per tile inside Beam state.
    """

    PENDING = BagStateSpec("pending", PickleCoder())
    HISTORY = ReadModifyWriteStateSpec("history", PickleCoder())
    EMITTED = ReadModifyWriteStateSpec("emitted", PickleCoder())
    SETTLE = TimerSpec("settle", TimeDomain.WATERMARK)

    def __init__(self, settle_minutes: float, min_clear_fraction: float = rules.MIN_CLEAR_FRACTION,
                 highest_probability: float = rules.HIGHEST_PROBABILITY) -> None:
        self.settle = Duration(seconds=round(settle_minutes * 60))
        self.min_clear_fraction = min_clear_fraction
        self.highest_probability = highest_probability

    def process(self, keyed: tuple, timestamp=beam.DoFn.TimestampParam,  # noqa: ANN001
                pending=beam.DoFn.StateParam(PENDING), settle=beam.DoFn.TimerParam(SETTLE)) -> Iterable:
        pending.add(keyed[1])
        settle.set(timestamp + self.settle)
        return []

    @on_timer(SETTLE)
    def flush(self, pending=beam.DoFn.StateParam(PENDING), history=beam.DoFn.StateParam(HISTORY),  # noqa: ANN001
              emitted=beam.DoFn.StateParam(EMITTED)) -> Iterator[rules.Alert]:
        rows = (history.read() or []) + list(pending.read())
        pending.clear()
        best = rules.observations(rows)
        kept = {(o.scan_date, o.scene_id) for o in best}
        history.write([r for r in rows if (r["scan_date"], r["scene_id"]) in kept])
        states = dict(emitted.read() or {})
        for alert in rules.alerts(best, min_clear_fraction=self.min_clear_fraction,
                                  highest_probability=self.highest_probability):
            state = (alert.confidence, alert.status)
            if states.get(alert.alert_id) != state:
                states[alert.alert_id] = state
                yield alert
        emitted.write(states)


def keyed_by_tile(row: dict) -> tuple[str, dict]:
    """A row as :func:`pipelines.analysis.rules.observations` reads it, keyed by AOI and tile."""
    return f"{row['aoi']}|{row['tile_id']}", {**row, "scan_date": dt.date.fromisoformat(row["scan_date"])}
