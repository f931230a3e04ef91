"""Flags and Beam options shared by the pipelines: the same flags run locally and on Dataflow.

A pipeline's command line is its own flags plus any of Beam's (``--runner``, ``--project``,
``--max_num_workers``, ...). :func:`parse` splits them and refuses anything else: Beam on its own would
pass an unknown flag by with a warning, so a typo such as ``--scan-date`` silently ran with the default.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    _BeamArgumentParser,
)

#: Used when no ``--runner`` is given. Beam's DirectRunner first tries to download the Prism runner,
#: which cannot work offline; the FnApiRunner is the DirectRunner's own in-process engine.
LOCAL_RUNNER = "FnApiRunner"
#: The streaming scan's, when no ``--runner`` is given: the FnApiRunner does not stream (a run from Pub/Sub
#: ended at once, having read nothing, exit 0); Beam's BundleBasedDirectRunner reads Pub/Sub as it goes.
STREAMING_LOCAL_RUNNER = "BundleBasedDirectRunner"


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """``(our flags, Beam's flags)``; a flag neither knows is a usage error (exit 2) naming the closest
    known one."""
    args, rest = parser.parse_known_args(argv)
    beam = _beam_parser()
    _, unknown = beam.parse_known_args(rest)
    if unknown:
        known = [s for p in (parser, beam) for a in p._actions  # noqa: SLF001 - argparse lists them nowhere public
                 for s in a.option_strings if s.startswith("--")]
        name = unknown[0].split("=", 1)[0]
        close = difflib.get_close_matches(name.replace("-", "_").replace("__", "--", 1), known, n=1, cutoff=0.75)
        parser.error(f"unrecognized argument {name}" + (f": did you mean {close[0]}?" if close else
                                                         " (not a flag of this pipeline nor of Beam)"))
    return args, rest


def _beam_parser() -> argparse.ArgumentParser:
    """A parser of every Beam pipeline option, built the way ``PipelineOptions.get_all_options`` does."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop()
        classes.setdefault(str(cls), cls)
        pending.extend(cls.__subclasses__())
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def pipeline_options(beam_args: Sequence[str], save_main_session: bool = True,  # noqa: ANN201
                     local_runner: str = LOCAL_RUNNER):
    """``PipelineOptions`` from the flags a pipeline's own parser did not consume (``local_runner`` when they
    name no runner)."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = local_runner
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options


def submitted_only(options) -> bool:  # noqa: ANN001 - PipelineOptions
    """True when running the pipeline only writes a job template (a Flex Template launch): the job runs
    later on Dataflow, so its outputs (manifest included) do not exist when ``run`` returns."""
    return bool(options.view_as(GoogleCloudOptions).template_location)
