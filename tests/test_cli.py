import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [
    "from pipelines.cli import main; main(['--help'])",
    *(f"from pipelines.cli import main; main(['{name}', '--help'])"
      for name in ("chip", "scan", "stream", "train", "report", "query", "demo", "submit", "synth")),
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
