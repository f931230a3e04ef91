"""What a command prints on stderr: its own progress and warnings, one line each; the libraries' chatter
only when asked for.

Beam logs dozens of INFO lines per run (type hints, state caches, shard renames) and the traceback of any
exception a step raises, which the command then reports in one line anyway; TensorFlow prints its CPU and
oneDNN banners. By default a command shows this project's messages (INFO and up) and the libraries'
errors; ``planet-tiles --verbose COMMAND`` (or ``PLANET_TILES_VERBOSE=1``) shows everything, and
``PLANET_TILES_DEBUG=1`` also lets a failed run end with its traceback.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import types
from collections.abc import Iterator, Sequence
from typing import TextIO

OURS = ("pipelines", "planet_model", "planet_core")
#: Libraries whose INFO and WARNING lines are noise to a user (each still logs its errors).
QUIET = ("apache_beam", "absl", "tensorflow", "keras", "pyiceberg", "h5py", "matplotlib", "urllib3",
         "google", "fsspec", "gcsfs", "sqlalchemy")


@contextlib.contextmanager
def _native_stderr_off() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block: what C++ code writes there is dropped, Python's
    own errors (raised after the block) still reach the user."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's package module with native stderr off: its oneDNN banner is written by absl
    before ``TF_CPP_MIN_LOG_LEVEL`` is read, twice per process, and no setting turns it off."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _native_stderr_off():
            self.loader.exec_module(module)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual and hands it to :class:`_QuietLoader`; every other import untouched."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (as logging's last-resort
    handler does): a command run in a process that swapped stderr since (a test's capture, a notebook)
    never writes to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:  # the one StreamHandler.__init__ sets
        pass


class _Plain(logging.Formatter):
    """``message`` for progress (INFO), ``warning: message`` and ``error: message`` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


def verbose() -> bool:
    return bool(os.environ.get("PLANET_TILES_VERBOSE") or os.environ.get("PLANET_TILES_DEBUG"))


def configure() -> None:
    """Set up stderr logging for a command (idempotent). Call before TensorFlow is imported, so that its
    C++ banners stay off too."""
    loud = verbose()
    if not loud:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO and WARNING lines
        if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
            sys.meta_path.insert(0, _QuietTensorFlow())
    root = logging.getLogger()
    if not any(getattr(h, "_planet_tiles", False) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s") if loud
                             else _Plain())
        handler._planet_tiles = True  # noqa: SLF001 - marks the handler this function added
        root.addHandler(handler)
    root.setLevel(logging.INFO if loud else logging.WARNING)
    for name in OURS:
        logging.getLogger(name).setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET if loud else logging.ERROR)
    # A step's exception is logged with its traceback before the run fails with it; the command reports
    # the failure in one line.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.NOTSET if loud else logging.CRITICAL)
