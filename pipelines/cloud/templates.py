"""Dataflow Flex Template metadata, generated from the pipelines' own argument parsers.

    python -m pipelines.cloud.templates infra/dataflow     # rewrites every pipeline's .metadata.json

A template's parameters are exactly its pipeline's flags (name, help, required or not, allowed values),
so the template and ``python -m pipelines.<name>`` cannot drift apart; a test compares the checked-in
files with what this module generates. Beam's own options (machine type, workers, ...) are not template
parameters: the launch request's ``environment`` carries them (see :mod:`pipelines.cloud.submit`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys

from pipelines import PIPELINES


def parser(pipeline: str) -> argparse.ArgumentParser:
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; choose from {PIPELINES}")
    return importlib.import_module(f"pipelines.{pipeline}").build_parser()


def flags(pipeline: str) -> list[argparse.Action]:
    """The pipeline's own options (``--help`` excluded)."""
    return [a for a in parser(pipeline)._actions if  # noqa: SLF001 - argparse lists its actions nowhere public
            a.option_strings and a.dest != "help"]


def _regex(action: argparse.Action) -> str | None:
    if action.choices:
        return "^(" + "|".join(re.escape(str(c)) for c in action.choices) + ")$"
    if action.type is int:
        return r"^-?[0-9]+$"
    if action.type is float:
        return r"^-?[0-9]*\.?[0-9]+([eE]-?[0-9]+)?$"
    return None


def metadata(pipeline: str) -> dict:
    """The template's ``metadata.json``: one parameter per pipeline flag."""
    p = parser(pipeline)
    parameters = []
    for action in flags(pipeline):
        name = action.option_strings[0].lstrip("-")
        text = (action.help or name).replace("%%", "%")
        if action.default not in (None, [], argparse.SUPPRESS):
            text += f" (default: {action.default})"
        if action.nargs == "*":
            text += " (one value per template parameter: a glob covers many files)"
        param = {"name": name, "label": name.replace("_", " ").capitalize(), "helpText": text,
                 "isOptional": not action.required}
        regex = _regex(action)
        if regex:
            param["regexes"] = [regex]
        parameters.append(param)
    return {"name": f"planet-tiles {pipeline}", "description": p.description, "streaming": pipeline == "stream",
            "parameters": parameters}


def main(argv: list[str] | None = None) -> None:
    folder = (list(sys.argv[1:] if argv is None else argv) or ["infra/dataflow"])[0]
    for pipeline in PIPELINES:
        path = os.path.join(folder, f"{pipeline}.metadata.json")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(metadata(pipeline), indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
