"""`pip install` of the built wheel, used from outside the checkout as a user would: every package, the
SQL and Leaflet must be in the wheel, and the commands must run end to end from there."""

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(command, cwd, env):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_runs_every_stage_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy: the build's own folders (build/, *.egg-info) stay out of the checkout
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "mutants", "demo-output"))
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist")], tmp_path, os.environ)
    (wheel,) = (tmp_path / "dist").glob("planet_tiles-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("pipelines/geo/grid.py", "pipelines/steps/tiles.py", "pipelines/analysis/report.py",
                     "pipelines/cloud/submit.py", "pipelines/sources/reader.py", "pipelines/store/scans.py",
                     "pipelines/analysis/sql/alerts.sql", "pipelines/analysis/vendor/leaflet-1.9.4/leaflet.js",
                     "planet_core/storage.py", "planet_model/train.py"):
        assert expected in names, expected

    # A fresh environment: the wheel alone, its dependencies from this one (a path entry, so that this
    # environment's editable install of the checkout is not seen there).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, os.environ)
    (target,) = (venv / "lib").glob("python3*/site-packages")
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
         str(wheel)], tmp_path, os.environ)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    work = tmp_path / "work"
    work.mkdir()
    tool = str(venv / "bin" / "planet-tiles")
    where = run([str(venv / "bin" / "python"), "-c", "import pipelines, planet_model; print(pipelines.__file__)"],
                work, env)
    assert where.startswith(str(venv)), where
    assert run([tool, "--version"], work, env).strip() == "planet-tiles 0.1.0"

    run([tool, "synth", "--output", "scenes", "--rows", "1", "--cols", "2", "--size", "512"], work, env)
    run([tool, "chip", "--scenes", "scenes/*.tif", "--labels", "scenes/truth.geojson", "--output", "chips"], work, env)
    trained = json.loads(run([tool, "train", "--data", "chips", "--output", "bundle", "--arch", "simple_cnn",
                              "--weights", "none", "--head_epochs", "2", "--batch_size", "4"], work, env))
    assert trained["bundle"]
    bounds = ("import glob, rasterio, rasterio.warp; s = rasterio.open(sorted(glob.glob('scenes/*[0-9].tif'))[0]); "
              "w, so, e, n = rasterio.warp.transform_bounds(s.crs, 'EPSG:4326', *s.bounds); "
              "print(f'{w + .001},{so + .001},{e - .001},{n - .001}')")
    region = "--aoi=" + run([str(venv / "bin" / "python"), "-c", bounds], work, env).strip()
    scanned = json.loads(run([tool, "scan", region, "--aoi_name", "w", "--scenes", "scenes/*.tif", "--bundle",
                              "bundle", "--output", "scans", "--scan_date", "2026-06-01"], work, env).splitlines()[-1])
    assert scanned["enumerated"] > 0
    run([tool, "report", "--scans", "scans", "--output", "report", "--no_images"], work, env)
    assert (work / "report" / "current" / "report.html").read_text().count("leaflet") > 0
    rows = run([tool, "query", "coverage", "--scans", "scans"], work, env).splitlines()
    assert json.loads(rows[0])["aoi"] == "w"
