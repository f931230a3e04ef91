"""Progress of a long pipeline step: a line every few seconds with the count so far and the rate.

Beam's local runners print nothing until a pipeline ends; a scan of a region runs for minutes, a
Dataflow job for hours. :class:`Progress` passes elements through unchanged and, in each process, logs
``scan: 1,536 tiles labelled, 34.2/s`` at most every :data:`INTERVAL` seconds (on Dataflow these are the
workers' log lines, each worker counting its own). Plain lines on stderr, so they read the same on a
terminal, in a file or in a scheduler's log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

log = logging.getLogger(__name__)

#: Seconds between two progress lines of one step in one process.
INTERVAL = 10.0


class Progress(beam.DoFn):
    """Elements pass through; ``what`` (e.g. ``"scan: tiles labelled"``) is counted and reported."""

    _lock = threading.Lock()
    _state: dict[str, list[float]] = {}  # what -> [count, started, last reported], per process

    def __init__(self, what: str, interval: float = INTERVAL) -> None:
        self.what, self.interval = what, interval

    def process(self, element: Any) -> Iterator[Any]:
        now = time.monotonic()
        with self._lock:
            state = self._state.setdefault(self.what, [0, now, now])
            state[0] += 1
            if now - state[2] >= self.interval:
                state[2] = now
                log.info("%s: %s, %.1f/s", self.what, f"{int(state[0]):,}", state[0] / max(now - state[1], 1e-9))
        yield element
