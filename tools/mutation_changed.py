"""``make mutation-changed``: mutmut on the mutants of the mutated modules changed since ``main`` only.

The whole run (``make mutation``) takes long; in the edit loop only the modules one touched matter. The
changed files are those that differ from the merge base with ``main`` (committed or not), kept when
``setup.cfg``'s ``[mutmut] only_mutate`` lists them; each becomes the pattern of its mutants' names
(``planet_model.metrics.*``: mutmut 3 matches names with ``fnmatch``). Nothing changed: nothing to run.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def changed(base: str = "main") -> set[str]:
    def lines(*args: str) -> set[str]:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return {line for line in run.stdout.splitlines() if line}

    merge_base = next(iter(lines("merge-base", base, "HEAD")))
    return lines("diff", "--name-only", merge_base) | lines("ls-files", "--others", "--exclude-standard")


def patterns(files: set[str]) -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mutated = config["mutmut"]["only_mutate"].split()
    return [path.removesuffix(".py").replace("/", ".") + ".*" for path in sorted(files) if path in mutated]


def main() -> int:
    chosen = patterns(changed(*sys.argv[1:2]))
    if not chosen:
        print("mutation-changed: no module that mutmut mutates changed since main; nothing to run")
        return 0
    print(f"mutation-changed: {', '.join(chosen)}", flush=True)
    return subprocess.run([str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", "2", *chosen],
                          cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
