import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [
    "from pipelines.cli import main; main(['--help'])",
    *(f"from pipelines.cli import main; main(['{name}', '--help'])"
      for name in ("chip", "scan", "stream", "train", "report", "query", "demo", "submit", "synth", "predict")),
    "from pipelines.stream import main; main(['--help'])",
])
def test_help_answers_without_tensorflow(command):
    probe = f"import sys\ntry:\n    {command}\nexcept SystemExit:\n    pass\nprint('TF' if 'tensorflow' in sys.modules else 'NO-TF')"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "usage:" in result.stdout
    assert result.stdout.strip().endswith("NO-TF")


def test_unknown_command_is_refused():
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--layout", "scenes", "--months", "2026-08"], "--months do not apply to --layout scenes"),
    (["--layout", "basemap", "--size", "512"], "--size do not apply to --layout basemap"),
    (["--layout", "basemap", "--quad_size", "1000"], "--quad_size 1000: must be 256 times a power of two"),
    (["--layout", "basemap", "--months", "2026-13"], "--months 2026-13: not a month (YYYY-MM)"),
])
def test_synth_refuses_flags_of_the_other_layout_and_bad_values(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "synth", "--output", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command, flag, value", [
    (["report", "--scans", "scans", "--output", "out"], "--highest_probability", "1.5"),
    (["report", "--scans", "scans", "--output", "out"], "--min_clear_fraction", "-0.1"),
    (["stream", "--subscription", "projects/p/subscriptions/s", "--aoi=-56,-10,-55.9,-9.9", "--bundle", "b",
      "--output", "out"], "--min_clear_fraction", "1.01"),
])
def test_judging_flags_outside_0_to_1_are_refused(tmp_path, command, flag, value):
    """report and the stream share the judging flags (:func:`queries.add_judging_arguments`) and refuse alike."""
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *command, flag, value], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"planet-tiles {command[0]}: {flag} {float(value)}: must be between 0 and 1"]
