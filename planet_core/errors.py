"""The two kinds of failure a command reports in one line instead of a traceback.

- :class:`UserError`: bad input the user can fix by changing what they gave (a flag, a file, a bundle);
  ``planet-tiles`` prints it naming the flag or file and exits 2.
- :class:`RunFailed`: a run that failed as a whole (every item failed, nothing was read, another run
  superseded it, the disk filled up); it changed nothing, says why, and exits 1.

Anything else that fails is a failed run too (exit 1). This module imports nothing, so the command line
can catch these errors without loading their modules.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input: what is wrong and, where it helps, what to do instead."""


#: What a Beam runner appends to an exception raised inside a step (``[while running 'Commit']``).
BEAM_SUFFIX = " [while running"


class RunFailed(RuntimeError):  # noqa: N818 - named for what happened to the run, as the CLI reports it
    """A run that failed as a whole and changed nothing: why, and where its error lines are."""

    def __str__(self) -> str:
        return super().__str__().split(BEAM_SUFFIX, 1)[0]

    @classmethod
    def of(cls, error: BaseException, what: str, output: str, published: bool = False) -> RunFailed:
        """A run that crashed (``error``: a full disk, a lost connection, a bug) as one line: ``what`` failed,
        why in the words of the error's last line, and that ``output`` is as it was, or, ``published``,
        that it is this run's (published before the run failed: a launcher that lost its job's status
        after the job's last step)."""
        if isinstance(error, cls):
            return cls(str(error))
        lines = [line for line in str(error).split(BEAM_SUFFIX, 1)[0].strip().splitlines() if line.strip()]
        why = lines[-1] if lines else type(error).__name__
        state = f"{output} is this run's, published before it failed" if published else f"{output} is unchanged"
        return cls(f"{what} failed: {why}; {state} (PLANET_TILES_DEBUG=1 shows where it failed)")
