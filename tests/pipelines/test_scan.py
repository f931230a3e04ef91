"""Real Beam runs of the scan pipeline with a bundle trained in the test session."""

import json

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import rasterio.warp
import shapely
from shapely.geometry import box

from pipelines import scan
from pipelines.geo.grid import WebMercatorGrid, scene_footprint
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core.errors import RunFailed, UserError
from planet_core.labels import LABELS
from tests import tables
from tests.conftest import RASTERS, RUNNER

ZOOM = 16


def region_of(scenes, *names):
    """An AOI inside the given scenes (a margin in from their union's edge)."""
    boxes = []
    for name in names:
        with rasterio.open(scenes["folder"] / f"{name}.tif") as src:
            boxes.append(scene_footprint(src.crs, src.transform, src.width, src.height))
    west, south, east, north = shapely.union_all(boxes).bounds
    return box(west + 0.002, south + 0.002, east - 0.002, north - 0.002)


def expected_tiles(scene_paths, region, min_valid=0.5):
    """(tile, scene) pairs the grid says intersect the region, with enough valid data."""
    from pipelines.sources.base import SceneItem
    from pipelines.sources.reader import SceneReader

    pairs = set()
    grid = WebMercatorGrid(ZOOM)
    for path in scene_paths:
        with SceneReader(SceneItem(str(path), path.stem)) as reader:
            footprint = scene_footprint(reader.crs, reader.transform, reader.shape[1], reader.shape[0])
            tiles = [grid.tile(x, y) for x, y in grid.tiles(footprint.intersection(region))]
            pairs |= {
                (t.tile_id, path.stem) for t, _, v, e, *_ in reader.read_tiles(tiles) if e is None and v >= min_valid
            }
    return pairs


def read_partition(output, date, aoi):
    """The rows of one partition in the table's current snapshot."""
    return [r for r in tables.read_rows(output, aoi) if r["scan_date"].isoformat() == date]


@pytest.fixture(scope="module")
def scanned(scenes, simple_bundle, tmp_path_factory):
    output = tmp_path_factory.mktemp("scan")
    names = [s.scene_id for s in scenes["specs"][:2]]
    region = region_of(scenes, *names)
    args = [*RUNNER, "--aoi=" + ",".join(str(v) for v in region.bounds), "--aoi_name", "xingu",
            "--scenes", *[str(scenes["folder"] / f"{n}.tif") for n in names], "--bundle", simple_bundle["path"],
            "--output", str(output), "--scan_date", "2026-06-01", "--grid", "WebMercatorQuad", "--zoom", str(ZOOM)]
    manifest = scan.run(args)
    return {"output": output, "manifest": manifest, "region": region, "names": names, "args": args,
            "paths": [scenes["folder"] / f"{n}.tif" for n in names]}


def test_rows_are_the_tiles_the_grid_says_with_labels_from_thresholds(scenes, simple_bundle, scanned):
    rows = read_partition(scanned["output"], "2026-06-01", "xingu")
    expected = expected_tiles([scenes["folder"] / f"{n}.tif" for n in scanned["names"]], scanned["region"])
    assert {(r["tile_id"], r["scene_id"]) for r in rows} == expected and len(rows) == len(expected)
    manifest = scanned["manifest"]
    assert manifest["inferred"] == len(rows)
    assert manifest["inferred"] + manifest["skipped"] + manifest["failed"] == manifest["enumerated"]
    thresholds = simple_bundle["meta"].thresholds
    for r in rows:
        assert r["labels"] == [n for n in LABELS if r[f"p_{n}"] >= np.float32(thresholds[n])]
        assert r["model_version"] == simple_bundle["meta"].version and r["tile_id"].startswith(
            f"WebMercatorQuad/{ZOOM}/"
        )
        assert r["acquired"].isoformat().startswith("2026-06-01T13:30")
        geometry = shapely.from_wkb(r["geometry"])
        assert geometry.is_valid and geometry.intersects(scanned["region"])
        assert geometry.contains(shapely.Point(r["lon"], r["lat"]))
        # Each synthetic scene has its UDM2 beside it (--cloud_mask auto): one class per pixel.
        fractions = [r[f"{n}_fraction"] for n in ("clear", "cloud", "shadow", "haze")]
        assert None not in fractions and sum(fractions) == pytest.approx(1.0, abs=1e-5)


def test_the_commit_names_the_files_and_they_are_geoparquet_duckdb_reads(scanned):
    snapshot = scans.snapshot(Warehouse(str(scanned["output"])))
    assert snapshot.snapshot_id == scanned["manifest"]["snapshot_id"] and len(snapshot.files) == 1
    table = pq.read_table(snapshot.files[0])
    assert table.schema.equals(schema.arrow_schema(), check_metadata=False)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["columns"]["geometry"]["encoding"] == "WKB"
    assert not any(str(f.type).startswith("uint") for f in table.schema)
    result = duckdb.connect().sql(f"""select aoi, scan_date, count(*) as n from read_parquet('{snapshot.files[0]}')
                                      group by all""").fetchall()
    assert len(result) == 1 and result[0][0] == "xingu" and str(result[0][1]) == "2026-06-01"
    assert result[0][2] == scanned["manifest"]["inferred"]
    commit = scans.commits(Warehouse(str(scanned["output"])))[0]
    assert commit.facts["run_id"] == scanned["manifest"]["run_id"] and commit.partitions == [("2026-06-01", "xingu")]
    assert {r["scene_uri"] for r in table.to_pylist()} == {str(scenes_path) for scenes_path in scanned["paths"]}


def test_rerun_replaces_only_its_partition_and_is_deterministic(scanned, tmp_path):
    # on a copy of the module's scan output: the other tests see it as the scan left it, in any order
    output = tables.copy_scans(scanned["output"], tmp_path / "scan")
    args = [str(output) if a == str(scanned["output"]) else a for a in scanned["args"]]
    before = read_partition(output, "2026-06-01", "xingu")
    scan.run([a if a != "2026-06-01" else "2026-06-08" for a in args])
    scan.run(args)  # same date and AOI again
    after = read_partition(output, "2026-06-01", "xingu")
    key = lambda r: (r["tile_id"], r["scene_id"])  # noqa: E731
    assert sorted(after, key=key) == sorted(before, key=key)  # no duplicates, same rows
    assert len(read_partition(output, "2026-06-08", "xingu")) == len(before)  # untouched


def test_corrupt_scene_gives_error_lines_and_every_good_tile(simple_bundle, tmp_path):
    # corrupt.tif is 8-bit RGB; a bundle for it must be 8-bit RGB too, so relabel the test bundle's dtype.
    import shutil

    bundle = tmp_path / "bundle8"
    shutil.copytree(simple_bundle["path"], bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["dtype"] = "uint8"
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with rasterio.open(RASTERS / "corrupt.tif") as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    manifest = scan.run([*RUNNER, f"--aoi={west},{south},{east},{north}", "--aoi_name", "corrupt",
                         "--scenes", str(RASTERS / "corrupt.tif"), "--bundle", str(bundle), "--output", str(tmp_path),
                         "--scan_date", "2026-06-01", "--grid", "native", "--allow_resampling"])  # 0.47 m pixels
    assert manifest["failed"] == 4 and manifest["inferred"] == 12
    errors = [json.loads(line) for line in open(manifest["errors"])]
    assert len(errors) == 4 and all(e["reason"].startswith("read:") for e in errors)
    assert len(read_partition(tmp_path, "2026-06-01", "corrupt")) == 12


def test_all_nodata_scene_writes_nothing_says_why_and_commits_nothing(simple_bundle, tmp_path):
    with rasterio.open(RASTERS / "all-nodata.tif") as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    with pytest.raises(RunFailed, match=r"nothing was inferred \(\d+ skipped, 0 failed of \d+\); commonest reasons: "
                                        r"nodata \(\d+\)\. The scans table is unchanged"):
        scan.run(
            [
                *RUNNER,
                f"--aoi={west},{south},{east},{north}",
                "--aoi_name",
                "empty",
                "--scenes",
                str(RASTERS / "all-nodata.tif"),
                "--bundle",
                simple_bundle["path"],
                "--output",
                str(tmp_path),
                "--scan_date",
                "2026-06-01",
                "--grid",
                "WebMercatorQuad",
                "--zoom",
                str(ZOOM),
            ]
        )
    with pytest.raises(UserError, match="no scans there"):  # nothing was committed: not even a table was made
        scans.snapshot(Warehouse(str(tmp_path)))


def test_bundle_bands_the_scene_cannot_provide_fail_before_any_work(simple_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "bundle4"
    shutil.copytree(simple_bundle["path"], bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["dtype"], meta["bands"] = "uint8", ["red", "green", "blue", "nir"]
    meta["normalization"] = {"mean": [0.0] * 4, "variance": [1.0] * 4}
    meta["domain"]["band_ranges"]["nir"] = [0.0, 255.0]
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"needs bands red, green, blue, nir.*RGB.byte.tif: bands: it provides red, "
                                         r"green, blue, not nir"):
        scan.run([*RUNNER, "--aoi=-80,30,-76,34", "--aoi_name", "x", "--scenes", str(RASTERS / "RGB.byte.tif"),
                  "--bundle", str(bundle), "--output", str(tmp_path / "out"), "--allow_resampling"])
    assert not (tmp_path / "out").exists()


def test_a_scene_of_another_resolution_is_refused_before_any_work_unless_allowed(scenes, simple_bundle, tmp_path):
    """The issue's case: a 30-m scene under a 3-m bundle ran, and every tile came out cloudy."""
    source = scenes["folder"] / "synth_20260601_r0c0.tif"
    coarse = tmp_path / "landsat_like.tif"
    with rasterio.open(source) as src:
        data = src.read(out_shape=(src.count, src.height // 10, src.width // 10),
                        resampling=rasterio.enums.Resampling.average)
        profile = {**src.profile, "width": src.width // 10, "height": src.height // 10,
                   "transform": src.transform * src.transform.scale(10, 10), "blockxsize": 64, "blockysize": 64}
        region = scene_footprint(src.crs, src.transform, src.width, src.height).buffer(-0.002)
    with rasterio.open(coarse, "w", **profile) as dst:
        dst.write(data)
    args = [*RUNNER, "--aoi=" + ",".join(str(v) for v in region.bounds), "--aoi_name", "coarse", "--scenes",
            str(coarse), "--band_order", "blue,green,red,nir", "--bundle", simple_bundle["path"], "--output",
            str(tmp_path / "out"), "--scan_date", "2026-06-01"]
    with pytest.raises(UserError, match=r"the bundle learned from 3\.00 m pixels; .*landsat_like.tif has 30\.0\d m "
                                         r"\(more than 10% off\).*--allow_resampling"):
        scan.run(args)
    assert not (tmp_path / "out").exists(), "refused before any work"
    manifest = scan.run([*args, "--allow_resampling"])
    assert manifest["inferred"] > 0
