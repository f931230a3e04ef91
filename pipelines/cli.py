"""``planet-tiles``: one command for every stage. Each subcommand is a module's ``main``, imported only
when it runs, so ``planet-tiles --help`` answers at once and never imports TensorFlow."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed

from pipelines import PIPELINES
from planet_core import logs
from planet_core.errors import RunFailed, UserError

_PIPELINE_HELP = {
    "chip": "cut scenes (or the Kaggle data set) into 256-px chips in TFRecords",
    "scan": "label every tile of a region with a model bundle, write Parquet",
    "stream": "label new scenes as they land (Pub/Sub notifications), alerts as they happen",
    "delineate": "the cleared polygons (hectares) of every event of the scans, into the clearings table",
}
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("pipelines.sources.synthetic", "write deterministic synthetic Amazon scenes and their ground truth"),
    "train": ("planet_model.train", "train a classifier on chips and export a model bundle"),
    "evaluate": (
        "planet_model.evaluate",
        "mean F2, per-label figures and weather consistency of bundles on labelled chips",
    ),
    "ensemble": ("planet_model.ensemble", "one bundle averaging several (and/or the 8 flips of a chip: --tta)"),
    **{name: (f"pipelines.{name}", _PIPELINE_HELP[name]) for name in PIPELINES},
    "predict": (
        "planet_model.predict",
        "a bundle's labels for the Kaggle test images: the competition's submission CSV",
    ),
    "report": ("pipelines.analysis.report", "detect forest change between scans; write alerts and report.html"),
    "query": (
        "pipelines.analysis.queries",
        "run a BigQuery query of infra/bigquery/ locally in DuckDB on the scans table",
    ),
    "export": ("pipelines.analysis.export", "a table as GeoPackage, FlatGeobuf or GeoJSON, for QGIS and other GIS"),
    "maintain": (
        "pipelines.store.upkeep",
        "expire old snapshots of the scans table and delete the files none references",
    ),
    "migrate": ("pipelines.store.migrate", "import scans written before the table (scan_date=/aoi= folders) into it"),
    "submit": (
        "pipelines.cloud.submit",
        "launch a pipeline (chip, scan, stream, delineate) on Dataflow from its Flex Template (--dry_run to preview)",
    ),
    "demo": ("pipelines.demo", "run everything end to end on built-in synthetic data"),
}


def usage() -> str:
    lines = ["usage: planet-tiles [--verbose] COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "planet-tiles COMMAND --help shows a command's options; --verbose shows the libraries' own",
              "logs (Beam, TensorFlow); --version the installed version."]
    return "\n".join(lines)


def version() -> str:
    try:
        return installed("planet-tiles")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-v", "--verbose"):
        os.environ["PLANET_TILES_VERBOSE"] = "1"
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    if args[0] == "--version":
        print(f"planet-tiles {version()}")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"planet-tiles: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    logs.configure()  # before the command's module imports TensorFlow or Beam
    module = importlib.import_module(COMMANDS[command][0])
    if os.environ.get("PLANET_TILES_DEBUG"):
        module.main(rest)  # every error with its traceback
        return
    try:
        module.main(rest)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except (UserError, FileNotFoundError) as error:  # bad input: one line, no traceback
        print(f"planet-tiles {command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (RunFailed, OSError) as error:  # the run failed as a whole, or could not write or read what it needed
        print(f"planet-tiles {command}: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
