"""What every ``planet-tiles`` subcommand's parser shares: its name, its one-line description, and help
that shows each option's default."""

from __future__ import annotations

import argparse
from typing import Any


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that appends ``(default: X)``, except where the option's help already says its
    default in its own words (many do: "default: the bundle's", "default 0.8"), or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def parser(command: str, doc: str | None, **options: Any) -> argparse.ArgumentParser:
    """The parser of ``planet-tiles COMMAND``: described by the first paragraph of its module's docstring,
    defaults shown in ``--help``."""
    description = (doc or "").split("\n\n")[0]
    return argparse.ArgumentParser(prog=f"planet-tiles {command}", description=description,
                                   formatter_class=HelpFormatter, **options)
