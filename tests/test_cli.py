import argparse
import importlib
import re
import subprocess
import sys

import pytest

from pipelines.cli import COMMANDS
from tests.conftest import refused

HELPED = tuple(sorted(COMMANDS))


@pytest.mark.slow  # a fresh process (3 s): not for `make check`
def test_help_answers_without_tensorflow():
    """``planet-tiles --help`` and every command's ``--help``, one after another in one fresh process: each
    prints its usage, and none has imported TensorFlow by then (the first that did is named)."""
    probe = "\n".join([
        "import sys",
        "from pipelines.cli import main",
        "from pipelines import stream",
        f"for argv in [['--help'], *[[name, '--help'] for name in {HELPED!r}], 'stream']:",
        "    try:",
        "        stream.main(['--help']) if argv == 'stream' else main(argv)",
        "    except SystemExit:",
        "        pass",
        "    print('#', argv, 'TF' if 'tensorflow' in sys.modules else 'NO-TF')",
    ])
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    marks = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert len(marks) == len(HELPED) + 2, result.stderr
    assert all(line.endswith("NO-TF") for line in marks), marks
    assert result.stdout.count("usage:") >= len(HELPED) + 1


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_with_a_default_shows_it_in_help(command, capsys):
    """Each option that has a default says it in --help: in its own words or as argparse's (default: X)."""
    from pipelines.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    printed = capsys.readouterr().out
    entries = re.split(r"\n  (?=-)", printed.split("\noptions:", 1)[1])  # one per option, flags first
    parser = importlib.import_module(COMMANDS[command][0]).build_parser()
    for action in parser._actions:
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            continue
        flag = action.option_strings[-1]
        (entry,) = [e for e in entries if re.match(rf"(-\S+ \S+, )?{flag}\b", e.strip())]
        assert "default" in " ".join(entry.split()).lower(), (command, flag, entry)


def test_unknown_command_is_refused():
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--layout", "scenes", "--months", "2026-08"], "--months do not apply to --layout scenes"),
    (["--layout", "basemap", "--size", "512"], "--size do not apply to --layout basemap"),
    (["--layout", "basemap", "--quad_size", "1000"], "--quad_size 1000: must be 256 times a power of two"),
    (["--layout", "basemap", "--months", "2026-13"], "--months 2026-13: not a month (YYYY-MM)"),
    (["--layout", "basemap", "--quad_size", "0"], "--quad_size 0: must be 256 times a power of two"),
    (["--layout", "basemap", "--quad_size", "128"], "--quad_size 128: must be 256 times a power of two"),
    (["--size", "0"], "--size 0: must be at least 1"),
    (["--rows", "0"], "--rows 0: must be at least 1"),
    (["--cols", "-1"], "--cols -1: must be at least 1"),
    (["--seed", "-1"], "--seed -1: must be at least 0"),
    (["--acquired", "yesterday"], "--acquired 'yesterday': not an ISO 8601 time"),
    (["--acquired", "2026-06-01T10:00:00"], "--acquired 2026-06-01T10:00:00: give its UTC offset"),
])
def test_synth_refuses_flags_of_the_other_layout_and_bad_values(tmp_path, capsys, args, message):
    stderr = refused(capsys, "synth", "--output", str(tmp_path), *args)
    assert message in stderr and len(stderr.strip().splitlines()) == 1


STREAM = ["stream", "--subscription", "projects/my-forest-project/subscriptions/s", "--aoi=-56,-10,-55.9,-9.9",
          "--bundle", "b"][1:]


@pytest.mark.parametrize("extra, message", [
    # Beam's own errors as tracebacks when the pipeline was built, after the bundle was read
    (["--subscription", "projects/p/subscriptions/s"], "--subscription projects/p/subscriptions/s: Invalid PubSub "
                                                       "project name: 'p'."),
    (["--subscription", "new-scenes"], '--subscription new-scenes: PubSub subscription must be in the form'),
    (["--alerts_topic", "alerts"], '--alerts_topic alerts: PubSub topic must be in the form'),
    (["--alerts_table", "alerts"], "--alerts_table alerts: Expected a table reference (PROJECT:DATASET.TABLE"),
    (["--window_minutes", "0"], "--window_minutes 0: must be at least a second (1/60)"),  # Beam's traceback too
    (["--window_minutes", "0.0166"], "--window_minutes 0.0166: must be at least a second"),  # windows of 0 s
    (["--window_minutes", "0.51"], "--window_minutes 0.51: windows are whole seconds, and this is 30.6; give a "
                                   "whole number of seconds in minutes (e.g. 0.516667)"),  # Beam rounded to 31 s
    (["--settle_minutes", "-1"], "--settle_minutes -1: must be 0 or more"),  # these two ran as if 0
    (["--history_days", "-3"], "--history_days -3: must be 0 or more"),
    # it ran, read nothing and ended at once, exit 0: the FnApiRunner does not stream
    (["--runner", "FnApiRunner"], "--runner FnApiRunner: it does not stream"),
])
def test_stream_names_that_pubsub_or_bigquery_refuse_and_times_of_nothing_are_refused(tmp_path, monkeypatch, capsys,
                                                                                       extra, message):
    monkeypatch.chdir(tmp_path)
    stderr = refused(capsys, "stream", *STREAM, "--output", "out", *extra)
    assert stderr.strip().splitlines()[-1].startswith(f"planet-tiles stream: {message}"), stderr


def test_the_stream_runs_locally_on_a_runner_that_streams_and_the_others_locally_on_the_fnapirunner():
    """The stream's tests run it on the BundleBasedDirectRunner; with no --runner it ran on the FnApiRunner,
    which ended at once."""
    from apache_beam.options.pipeline_options import StandardOptions

    from pipelines import stream
    from pipelines.steps.options import pipeline_options

    local = stream.streaming_options([]).view_as(StandardOptions)
    assert (local.runner, local.streaming) == ("BundleBasedDirectRunner", True)
    assert stream.streaming_options(["--runner", "DataflowRunner"]).view_as(StandardOptions).runner == "DataflowRunner"
    assert pipeline_options([]).view_as(StandardOptions).runner == "FnApiRunner"


@pytest.mark.parametrize("command, flag, value", [
    (["report", "--scans", "scans", "--output", "out"], "--highest_probability", "1.5"),
    (["report", "--scans", "scans", "--output", "out"], "--min_clear_fraction", "-0.1"),
    (["stream", *STREAM, "--output", "out"], "--min_clear_fraction", "1.01"),
])
def test_judging_flags_outside_0_to_1_are_refused(tmp_path, monkeypatch, capsys, command, flag, value):
    """report and the stream share the judging flags (:func:`queries.add_judging_arguments`) and refuse alike."""
    monkeypatch.chdir(tmp_path)
    assert refused(capsys, *command, flag, value).strip().splitlines() == [
        f"planet-tiles {command[0]}: {flag} {float(value)}: must be between 0 and 1"
    ]


@pytest.mark.parametrize("command, message", [
    (["chip", "--scenes", "s.tif", "--output", "out", "--skip_cloudier_than", "0.2", "--cloud_mask", "none"],
     "--skip_cloudier_than needs the scenes' cloud masks; it cannot go with --cloud_mask none"),
    (["chip", "--scenes", "s.tif", "--output", "out", "--skip_cloudier_than", "1.5"],
     "--skip_cloudier_than 1.5: must be between 0 and 1"),
    (["chip", "--scenes", "s.tif", "--output", "out", "--cloud_mask", "udm2"], "invalid choice: 'udm2'"),
    (["chip", "--scenes", "nothing-*.tif", "--output", "out"], "--scenes: no scene matches 'nothing-*.tif'"),
    (["chip", "--stac", "items.json", "--kaggle_csv", "k.csv", "--kaggle_images", ".", "--output", "out"],
     "give either scenes (--scenes/--stac) or the Kaggle data set, not both"),
    (["chip", "--kaggle_csv", "k.csv", "--kaggle_images", ".", "--output", "out", "--tile_size", "128"],
     "--tile_size applies to scenes, not to the Kaggle data set (--kaggle_csv, --kaggle_images: its chips are "
     "its images as they are, labelled by its CSV)"),
    (["chip", "--kaggle_csv", "k.csv", "--kaggle_images", ".", "--output", "out", "--labels", "truth.geojson"],
     "--labels applies to scenes, not to the Kaggle data set"),
    (["chip", "--kaggle_csv", "k.csv", "--kaggle_images", ".", "--output", "out", "--read_threads", "4"],
     "--read_threads applies to scenes, not to the Kaggle data set"),
    (["chip", "--scenes", "s.tif", "--output", "out", "--min_label_coverage", "0.5"],  # silently ignored
     "--min_label_coverage 0.5 does nothing without --labels"),
    (["report", "--scans", "scans", "--output", "out", "--no_images", "--no_clearings", "--scenes", "s.tif"],
     "--scenes and --stac say where the scenes of the pictures, clearings and --imagery are; they cannot go with "
     "both --no_images and --no_clearings unless --imagery"),
    (["report", "--scans", "scans", "--output", "out", "--no_images", "--no_clearings", "--band_order",
      "blue,green,red,nir"], "--band_order says how the scenes of the pictures, clearings and --imagery are read"),
    (["report", "--scans", "scans", "--output", "out", "--min_clearing_ha", "-1"],
     "--min_clearing_ha -1.0: must be more than 0"),
    (["report", "--scans", "scans", "--output", "out", "--no_clearings", "--min_clearing_ha", "2"],
     "--min_clearing_ha 2.0 does nothing with --no_clearings: nothing is delineated"),
    (["report", "--scans", "scans", "--output", "out", "--no_images", "--max_pictures", "3"],
     "--max_pictures 3 does nothing with --no_images: there are no pictures"),
    (["report", "--scans", "scans", "--output", "out", "--zone_name_property", "NAME"],
     "--zone_name_property NAME does nothing with no --zones: there are no zones to name"),
    (["delineate", "--scans", "scans", "--event_window_days", "-3"], "--event_window_days -3: must be 0 or more"),
])
def test_imagery_flags_that_cannot_work_are_refused_in_one_line(tmp_path, monkeypatch, capsys, command, message):
    monkeypatch.chdir(tmp_path)
    stderr = refused(capsys, *command)
    assert message in stderr.strip().splitlines()[-1], stderr  # argparse's own errors follow usage


@pytest.mark.parametrize("command", [
    ["report", "--scans", "scans", "--no_images", "--no_clearings"],
    ["chip", "--scenes", "s.tif"],
    ["evaluate", "--bundle", "b", "--data", "chips"],
])
def test_a_file_named_as_the_output_folder_is_refused_and_kept(tmp_path, monkeypatch, capsys, command):
    """Before any work (report's was an errno from its first write, exit 1); the file stays as it was."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").write_text("mine")
    stderr = refused(capsys, *command, "--output", "out")
    assert stderr.strip().splitlines()[-1].endswith("out: a file, not a folder"), stderr
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.parametrize(("content", "problem"), [
    (None, "no such file"),
    ('{"type": "FeatureCollection", "features": []}', "no features"),
    ('{"type": "Point", "coordinates": [-59, -7]}', "no features"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": null}]}',
     "feature 0 has no 'tag' property"),
    ("[1, 2]", "not GeoJSON polygons with a 'tag' property"),
])
def test_chip_labels_that_tag_nothing_are_refused_before_any_work(tmp_path, monkeypatch, capsys, content, problem):
    """A missing --labels failed the run after it started (exit 1); an empty or bare-geometry one tagged every
    chip with nothing, silently."""
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "truth.geojson").write_text(content)
    stderr = refused(capsys, "chip", "--scenes", "s.tif", "--output", "out", "--labels", "truth.geojson")
    assert stderr.strip().splitlines()[-1].startswith("planet-tiles chip: --labels truth.geojson: ") and \
        problem in stderr, stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("held, what", [("manifest.json", "a chip set"), ("current.json", "a report"),
                                        ("bundle.json", "a model bundle")])
@pytest.mark.parametrize("command", [
    ["scan", "--aoi=-56,-10,-55.9,-9.9", "--aoi_name", "a", "--scenes", "s.tif", "--bundle", "b", "--output", "out"],
    ["stream", *STREAM, "--output", "out"],
    ["maintain", "--scans", "out"],
])
def test_tables_are_not_made_among_another_outputs_files(tmp_path, monkeypatch, capsys, held, what, command):
    """A scan, a stream or maintain pointed at a chip set, a report or a bundle made the scans' catalog and
    table among its files (a wrong folder named); a warehouse already there is used as it is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / held).write_text("{}")
    stderr = refused(capsys, *command)
    flag = "--scans" if command[0] == "maintain" else "--output"
    assert stderr.strip().splitlines()[-1] == (f"planet-tiles {command[0]}: {flag} out: holds {what} ({held}); the "
                                               "scans' tables need a folder of their own"), stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [held]


def _readme_commands() -> list[list[str]]:
    """The ``planet-tiles`` commands of the README's code blocks, as argument lists: continuation lines joined,
    comments dropped, optional parts written ``[--flag VALUE]`` taken as given and ``...`` (more of the same)
    left out."""
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.match(r"\s*(?:\.venv/bin/)?planet-tiles\s+(.*)", line)
            if command:
                words = shlex.split(command.group(1).replace("[", " ").replace("]", " "), comments=True)
                found.append([w for w in words if w != "..."])
    return found


README_COMMANDS = _readme_commands()


@pytest.mark.parametrize("argv", README_COMMANDS, ids=[" ".join(a)[:60] for a in README_COMMANDS])
def test_every_readme_command_is_one_its_parser_accepts(argv):
    """Each command the README shows parses as written: a command that exists, flags it has, the required ones
    given (one example lacked ``--output``, which ``evaluate`` requires), values of the right type; the
    pipeline flags after ``submit``'s ``--`` are checked against that pipeline's parser and Beam's."""
    from pipelines import PIPELINES
    from pipelines.steps import options

    def parse(name: str, words: list[str]) -> None:
        if name == "submit" and "--" in words:
            words, pipeline = words[:words.index("--")], words[words.index("--") + 1:]
            options.parse(importlib.import_module(COMMANDS[words[0]][0]).build_parser(), pipeline)
        parser = importlib.import_module(COMMANDS[name][0]).build_parser()
        options.parse(parser, words) if name in PIPELINES else parser.parse_args(words)

    assert argv[0] in COMMANDS or argv[0] in ("--help", "--version", "--verbose"), argv
    if argv[0] in COMMANDS:
        try:
            parse(argv[0], argv[1:])
        except SystemExit as error:
            pytest.fail(f"planet-tiles {' '.join(argv)}: refused ({error})")


def test_the_readme_commands_are_found():
    """The reading above finds the README's commands (a change of its code blocks' form would leave nothing
    to check)."""
    assert len(README_COMMANDS) >= 30
    assert {a[0] for a in README_COMMANDS} >= {"synth", "chip", "train", "evaluate", "scan", "report", "query",
                                               "export", "maintain", "submit", "delineate", "predict", "ensemble"}
