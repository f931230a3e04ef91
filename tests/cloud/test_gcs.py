"""Every ``gs://`` path of the product against a real Cloud Storage API server on localhost
(:mod:`tests.cloud.gcs_emulator`): the storage layer, chip, a bundle, scan into a scans table whose
files are in the bucket (committed by a SQL catalog, read back through pyiceberg's gcsfs file IO), and a
query of it, with Beam's GCS filesystem and GDAL's ``/vsigs/`` doing the scene reads. The one layer that
cannot be pointed at an emulator (TensorFlow's GCS filesystem, used by training) is named in the README,
with why."""

import contextlib
import io
import json
import subprocess
import sys

import pytest

from pipelines import chip, scan
from pipelines.analysis import queries
from pipelines.sources import synthetic
from pipelines.store import scans
from pipelines.store.catalog import Warehouse
from planet_core import storage
from tests.cloud import gcs_emulator
from tests.conftest import RUNNER


@pytest.fixture(scope="module")
def gcs():
    with gcs_emulator.running() as emulator:
        yield emulator


def test_the_storage_layer_on_cloud_storage(gcs):
    base = f"gs://{gcs.bucket}/layer"
    storage.write_text(f"{base}/a.txt", "one")
    assert storage.read_text(f"{base}/a.txt") == "one" and storage.exists(f"{base}/a.txt")
    storage.write_text(f"{base}/b.txt", "two")
    assert storage.glob(f"{base}/*.txt") == [f"{base}/a.txt", f"{base}/b.txt"]
    assert [path for path, _ in storage.modified(f"{base}/*")] == [f"{base}/a.txt", f"{base}/b.txt"]
    storage.delete([f"{base}/a.txt", f"{base}/b.txt"])
    assert gcs.names("layer/") == []


def test_against_the_emulator_no_credentials_are_looked_for(gcs, tmp_path):
    """A command on gs:// paths against the emulator goes anonymous at once: Beam used to look for Google
    credentials four times with back-off (about 21 s) and say it could not find them."""
    storage.write_text(f"gs://{gcs.bucket}/hello.txt", "hi")
    done = subprocess.run([sys.executable, "-c", "from planet_core import storage; "
                           f"print(storage.read_text('gs://{gcs.bucket}/hello.txt'))"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "hi", done.stderr
    assert "credentials" not in done.stderr, done.stderr


def test_manifest_swap_on_cloud_storage_returns_what_it_replaced(gcs):
    """The swap's read-then-write on the Cloud Storage path. (The emulator ignores ``ifGenerationMatch``, so
    concurrent writers are tested on the local path only; the README says so.)"""
    path = f"gs://{gcs.bucket}/swap/_manifest.json"
    assert storage.swap(path, lambda old: b'{"run": 1}') is None
    assert storage.swap(path, lambda old: json.dumps({"run": json.loads(old)["run"] + 1}).encode()) == b'{"run": 1}'
    assert json.loads(storage.read_text(path)) == {"run": 2}


@pytest.fixture(scope="module")
def uploaded(gcs, tmp_path_factory):
    """Two synthetic scenes with their UDM2 masks and ground truth, in the bucket."""
    folder = tmp_path_factory.mktemp("gcs-scenes")
    specs = synthetic.mosaic(seed=21, rows=1, cols=2, size=512)
    summaries = [synthetic.write_scene(spec, folder) for spec in specs]
    synthetic.merge_truth(summaries, folder / "truth.geojson")
    for path in folder.iterdir():
        if path.suffix in (".tif", ".geojson"):
            gcs.upload(path, f"scenes/{path.name}")
    return {"folder": folder, "specs": specs, "prefix": f"gs://{gcs.bucket}/scenes"}


def test_chip_and_scan_with_every_path_on_cloud_storage(gcs, uploaded, simple_bundle, tmp_path):
    from pathlib import Path

    prefix = f"gs://{gcs.bucket}"
    manifest = chip.run([*RUNNER, "--scenes", f"{uploaded['prefix']}/*.tif", "--labels",
                         f"{uploaded['prefix']}/truth.geojson", "--output", f"{prefix}/chips"])
    assert (manifest["enumerated"], manifest["written"], manifest["failed"]) == (8, 8, 0)
    published = json.loads(storage.read_text(f"{prefix}/chips/{chip.MANIFEST}"))
    assert published["files"] and all(gcs.names(f"chips/{name}") for name in published["files"])
    assert set(gcs.names("chips/")) == {"chips/manifest.json", *(f"chips/{name}" for name in published["files"])}

    # Training reads records and writes its checkpoints through TensorFlow's own GCS filesystem, which
    # talks only to the real Cloud Storage (README): the session's trained bundle goes up as a user's would.
    for path in Path(simple_bundle["path"]).iterdir():
        gcs.upload(path, f"bundle/{path.name}")

    aoi = tmp_path / "xingu.geojson"
    aoi.write_text(json.dumps(json.loads((uploaded["folder"] / "truth.geojson").read_text())["features"][0]))
    region = gcs.upload(aoi, "aois/xingu.geojson")
    out, catalog = f"{prefix}/scans", f"sqlite:///{tmp_path}/catalog.db"
    manifest = scan.run([*RUNNER, "--aoi", region, "--scenes", f"{uploaded['prefix']}/*.tif", "--catalog", catalog,
                         "--bundle", f"{prefix}/bundle", "--output", out, "--scan_date", "2026-06-01"])
    assert manifest["inferred"] > 0 and manifest["failed"] == 0 and manifest["mask_errors"] == 0
    snapshot = scans.snapshot(Warehouse(out, catalog))
    assert snapshot.files and all(f.startswith(f"{out}/tile_labels/data/scan_date=2026-06-01/aoi=xingu/")
                                  for f in snapshot.files)
    assert all(gcs.names(f[len(prefix) + 1:]) for f in snapshot.files), "the data files are in the bucket"
    rows = snapshot.arrow_reader().read_all().to_pylist()
    assert len(rows) == manifest["inferred"] and all(r["clear_fraction"] is not None for r in rows)
    # `query` reads the same snapshot from the bucket (through pyiceberg's reader: no DuckDB extension).
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        queries.main(["latest_state", "--scans", out, "--catalog", catalog])
    assert len(printed.getvalue().splitlines()) == len({r["tile_id"] for r in rows})


def test_an_unreachable_object_is_an_error_line_and_the_job_goes_on(gcs, uploaded, tmp_path):
    prefix = f"gs://{gcs.bucket}"
    good = f"{uploaded['prefix']}/{uploaded['specs'][0].scene_id}.tif"
    missing = f"{prefix}/scenes/gone.tif"
    manifest = chip.run([*RUNNER, "--scenes", good, missing, "--output", f"{prefix}/partly"])
    assert manifest["scenes"]["gone"] == {"written": 0, "skipped": 0, "failed": 1}
    assert manifest["written"] == 4
    [errors] = [n for n in json.loads(storage.read_text(f"{prefix}/partly/{chip.MANIFEST}"))["files"]
                if n.endswith("errors.jsonl")]
    [line] = [json.loads(x) for x in storage.read_text(f"{prefix}/partly/{errors}").splitlines()]
    assert line["uri"] == missing and "cannot open" in line["reason"]
