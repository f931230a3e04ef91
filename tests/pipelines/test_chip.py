"""Real Beam runs of the chipping pipeline on synthetic scenes, the shared rasters and Kaggle-format chips."""

import json

import cv2
import numpy as np
import pytest
import rasterio

from pipelines import chip
from planet_core import imagery, labels
from planet_core.errors import UserError
from planet_model import data, records
from tests.conftest import RASTERS, RUNNER


def read_chips(folder):
    """The chips of the set the folder's manifest names."""
    import tensorflow as tf

    files = data.list_files(str(folder))
    compression = "GZIP" if files and files[0].endswith(".gz") else ""
    return [records.decode(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type=compression)]


def errors(folder):
    """The error lines of the set's run (listed by its manifest when the run had any)."""
    listed = json.loads((folder / records.MANIFEST).read_text())["files"]
    return [json.loads(line) for name in listed if name.endswith("errors.jsonl") for line in open(folder / name)]


def test_synthetic_mosaic_every_chip_written_with_the_ground_truth_labels(scenes, chips):
    manifest = chips["manifest"]
    assert manifest["enumerated"] == manifest["written"] == 192 and manifest["failed"] == 0
    assert set(manifest["scenes"]) == {s.scene_id for s in scenes["specs"]}
    expected = {}
    for summary in scenes["summaries"]:
        expected.update(labels.read_kaggle_csv(summary["labels_csv"]))
    found = read_chips(chips["folder"])
    assert len(found) == 192 and len({c.tile_id for c in found}) == 192
    for c in found:
        assert c.bands == imagery.RGBN and c.image.shape == (256, 256, 4) and c.image.dtype == np.uint16
        assert labels.decode(c.labels) == expected[c.tile_id]
        assert c.crs == "EPSG:32721" and -57 < c.bounds[0] < c.bounds[2] < -55 and c.valid_fraction == 1.0


def test_bands_are_reordered_from_planets_blue_green_red_nir(scenes, chips):
    c = next(c for c in read_chips(chips["folder"]) if c.tile_id.endswith("/0/0"))
    with rasterio.open(scenes["folder"] / f"{c.scene_id}.tif") as src:
        bgrn = src.read(window=((0, 256), (0, 256)))
    np.testing.assert_array_equal(c.image[..., 0], bgrn[2])  # red
    np.testing.assert_array_equal(c.image[..., 2], bgrn[0])  # blue
    np.testing.assert_array_equal(c.image[..., 3], bgrn[3])  # nir


def test_shared_rasters_bad_input_is_accounted_for_and_never_stops_the_job(tmp_path):
    out = tmp_path / "out"
    zero = tmp_path / "zero-bytes.tif"
    zero.write_bytes(b"")
    manifest = chip.run([*RUNNER, "--scenes", str(RASTERS / "*.tif"), str(zero), "--output", str(out)])
    scenes = manifest["scenes"]
    assert scenes["corrupt"] == {"written": 12, "skipped": 0, "failed": 4}
    assert scenes["all-nodata"]["written"] == 0 and scenes["all-nodata"]["skipped"] == 10
    assert scenes["rotated"] == {"written": 0, "skipped": 0, "failed": 1}
    assert scenes["zero-bytes"]["failed"] == 1
    assert manifest["written"] + manifest["skipped"] + manifest["failed"] == manifest["enumerated"]
    lines = errors(out)
    assert len(lines) == manifest["failed"] == 6
    rotated = next(e for e in lines if e["scene_id"] == "rotated")
    assert "rotated.tif" in rotated["reason"] and "no CRS" in rotated["reason"]
    bad_windows = sorted(tuple(e["window"]) for e in lines if e["scene_id"] == "corrupt")
    assert bad_windows == [(512, 512, 256, 256), (512, 768, 256, 256), (768, 512, 256, 256), (768, 768, 256, 256)]
    by_scene = {}
    for c in read_chips(out):
        by_scene.setdefault(c.scene_id, []).append(c)
    assert len(by_scene["corrupt"]) == 12 and "all-nodata" not in by_scene
    rgba = by_scene["RGBA.uint16"]  # blue, green, red, alpha -> red, green, blue; alpha is the mask
    assert all(c.bands == imagery.RGB and c.image.dtype == np.uint16 for c in rgba)
    assert all(c.valid_fraction >= 0.5 for c in rgba)
    edge = [c for c in by_scene["RGB.byte"] if c.valid_fraction < 1.0]
    assert edge and all((c.image.reshape(-1, 3) == 0).all(axis=1).any() for c in edge)  # nodata padding


def test_rerun_replaces_the_output_without_duplicates_or_stale_shards(scenes, tmp_path):
    out = tmp_path / "out"
    args = [*RUNNER, "--scenes", str(scenes["folder"] / "*_r0c0.tif"), "--output", str(out)]
    first = chip.run(args)
    second = chip.run(args)
    assert first["run_id"] != second["run_id"]
    files = [str(out / f) for f in json.loads((out / "manifest.json").read_text())["files"]]
    assert files and all(second["run_id"] in f for f in files)
    assert len(read_chips(out)) == 16, "readers read the second run's chips only"
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["replaced"]) == [first["run_id"]] and all((out / f).exists() for f in first["files"]), \
        "the replaced set stays a while for readers that opened it"
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([first["run_id"], second["run_id"]])


def test_web_mercator_grid_with_gzip(scenes, tmp_path):
    out = tmp_path / "wmq"
    manifest = chip.run([*RUNNER, "--scenes", str(scenes["folder"] / "*_r1c1.tif"), "--grid", "WebMercatorQuad",
                         "--zoom", "16", "--compression", "gzip", "--output", str(out)])
    found = read_chips(out)
    assert all(f.endswith(".tfrecord.gz") for f in manifest["files"]) and len(found) == manifest["written"] > 0
    assert all(c.tile_id.startswith("WebMercatorQuad/16/") and c.crs == "EPSG:3857" for c in found)
    assert manifest["enumerated"] == manifest["written"] + manifest["skipped"]  # edge tiles below 0.5 skipped


def test_kaggle_format_jpg_and_tif(tmp_path):
    rng = np.random.default_rng(3)
    jpgs, tifs = tmp_path / "train-jpg", tmp_path / "train-tif-v2"
    jpgs.mkdir()
    tifs.mkdir()
    rows = [("train_0", ["clear", "primary"]), ("train_1", ["cloudy"]), ("train_2", ["haze", "primary", "water"])]
    for name, _ in rows:
        rgb = np.zeros((256, 256, 3), np.uint8)
        rgb[..., 0] = 200  # red
        cv2.imwrite(str(jpgs / f"{name}.jpg"), rgb[..., ::-1])
        bgrn = (rng.random((4, 256, 256)) * 4000).astype(np.uint16)
        with rasterio.open(tifs / f"{name}.tif", "w", driver="GTiff", width=256, height=256, count=4,
                           dtype="uint16") as dst:
            dst.write(bgrn)
    (jpgs / "train_2.jpg").write_bytes(b"not a jpeg")  # one broken image
    csv = tmp_path / "train.csv"
    labels.write_kaggle_csv(csv, rows)

    out = tmp_path / "jpg"
    manifest = chip.run([*RUNNER, "--kaggle_csv", str(csv), "--kaggle_images", str(jpgs), "--output", str(out)])
    assert (manifest["written"], manifest["failed"]) == (2, 1)
    found = {c.tile_id: c for c in read_chips(out)}
    assert found["train_0"].bands == imagery.RGB and found["train_0"].image[..., 0].mean() == pytest.approx(200, abs=2)
    assert found["train_0"].bounds == () and found["train_0"].crs == ""
    assert labels.decode(found["train_1"].labels) == ["cloudy"]
    assert errors(out)[0]["item"] == "train_2"

    out = tmp_path / "tif"
    manifest = chip.run([*RUNNER, "--kaggle_csv", str(csv), "--kaggle_images", str(tifs), "--kaggle_format", "tif",
                         "--output", str(out)])
    assert manifest["written"] == 3
    c = {c.tile_id: c for c in read_chips(out)}["train_2"]
    with rasterio.open(tifs / "train_2.tif") as src:
        bgrn = src.read()
    assert c.bands == imagery.RGBN
    np.testing.assert_array_equal(c.image[..., 0], bgrn[2])
    np.testing.assert_array_equal(c.image[..., 3], bgrn[3])
    assert labels.decode(c.labels) == ["haze", "primary", "water"]


def test_no_input_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no input"):
        chip.run(["--output", str(tmp_path)])
    with pytest.raises(Exception, match="no scene matches"):
        chip.run([*RUNNER, "--scenes", str(tmp_path / "nothing-*.tif"), "--output", str(tmp_path)])


def test_udm2_skips_chips_too_cloudy_and_a_mask_of_another_grid_is_an_error_line(tmp_path):
    from pipelines.sources import synthetic

    folder = tmp_path / "scenes"
    hazy = synthetic.SceneSpec(seed=3, width=1024, height=1024, cloud_probability=1.0, haze_probability=1.0)
    synthetic.write_scene(hazy, folder)
    other = synthetic.SceneSpec(seed=5, width=512, height=512, col=3)
    synthetic.write_scene(other, folder)
    (folder / f"{other.scene_id}_udm2.tif").unlink()
    (folder / f"{other.scene_id}_udm2.tif").symlink_to(
        RASTERS / "planetscope" / "20151119_025740_0c74_3B_udm2_clip.tif"
    )
    out = tmp_path / "out"
    manifest = chip.run(
        [*RUNNER, "--scenes", str(folder / "*.tif"), "--skip_cloudier_than", "0.2", "--output", str(out)]
    )
    # The oracle: each 256-px window's share of clear pixels in the hazy scene's UDM2, read with rasterio.
    with rasterio.open(folder / f"{hazy.scene_id}_udm2.tif") as udm2:
        clear = udm2.read(1)
    shares = [clear[r:r + 256, c:c + 256].mean() for r in range(0, 1024, 256) for c in range(0, 1024, 256)]
    cloudy = sum(1 - share > 0.2 for share in shares)
    assert 0 < cloudy < 16
    assert manifest["scenes"][hazy.scene_id] == {"written": 16 - cloudy, "skipped": cloudy, "failed": 0}
    assert manifest["skipped_reasons"] == {"cloudy": cloudy}
    # The mask of another grid: the scene's 4 chips are kept, each with an error line, and counted.
    assert manifest["scenes"][other.scene_id] == {"written": 4, "skipped": 0, "failed": 0}
    assert manifest["mask_errors"] == 4
    lines = errors(out)
    assert len(lines) == 4 and all("is not its scene's" in e["mask_error"] and e["status"] == "written" for e in lines)
    assert len(read_chips(out)) == 16 - cloudy + 4


def test_stac_band_per_file_landsat_item_is_chipped_like_one_scene(tmp_path):
    from tests.sources.test_stac import landsat_item, write_collection

    (tmp_path / "landsat8").symlink_to(RASTERS / "landsat8")
    collection = write_collection(tmp_path, landsat_item())
    out = tmp_path / "out"
    manifest = chip.run([*RUNNER, "--stac", str(collection), "--output", str(out)])
    # 627 x 603 px: the 2 x 2 full tiles are written; the edge tiles hold under half data and are skipped.
    assert manifest["scenes"]["LC80200392015216LGN00"] == {"written": 4, "skipped": 5, "failed": 0}
    found = {c.tile_id: c for c in read_chips(out)}
    assert set(found) == {f"LC80200392015216LGN00/{r}/{c}" for r in (0, 1) for c in (0, 1)}
    bands = {}
    for band, role in (("B4", "red"), ("B3", "green"), ("B2", "blue"), ("B5", "nir")):
        with rasterio.open(RASTERS / "landsat8" / f"l8_{band}.tif") as src:
            bands[role] = src.read(1)
    c = found["LC80200392015216LGN00/1/1"]
    assert c.bands == imagery.RGBN and c.gsd_m == pytest.approx(30, rel=0.01)
    expected = np.stack([bands[r][256:512, 256:512] for r in ("red", "green", "blue", "nir")], axis=-1)
    np.testing.assert_array_equal(c.image, expected)


def test_tile_size_and_aoi_change_which_chips_are_cut(tmp_path):
    from pyproj import Transformer

    path = RASTERS / "RGB.byte.tif"  # 791 x 718 px, UTM 18N, 300 m
    with rasterio.open(path) as src:
        transform, crs = src.transform, src.crs
    whole = chip.run([*RUNNER, "--scenes", str(path), "--tile_size", "128", "--min_valid_fraction", "0",
                      "--output", str(tmp_path / "whole")])
    assert whole["enumerated"] == 7 * 6  # ceil(791 / 128) x ceil(718 / 128)
    assert {c.image.shape for c in read_chips(tmp_path / "whole")} == {(128, 128, 3)}
    # An AOI around the pixels of tile row 2, columns 3-4 (its corners a quarter tile inside them).
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    west, north = to_wgs84.transform(*(transform * (3 * 128 + 32, 2 * 128 + 32)))
    east, south = to_wgs84.transform(*(transform * (5 * 128 - 32, 3 * 128 - 32)))
    part = chip.run([*RUNNER, "--scenes", str(path), "--tile_size", "128", "--min_valid_fraction", "0",
                     f"--aoi={west},{south},{east},{north}", "--output", str(tmp_path / "part")])
    assert sorted(c.tile_id for c in read_chips(tmp_path / "part")) == ["RGB.byte/2/3", "RGB.byte/2/4"]
    assert part["enumerated"] == 2


def test_min_label_coverage_decides_which_thin_land_covers_count(scenes, tmp_path):
    summary = next(s for s in scenes["summaries"] if "road" in open(s["labels_csv"]).read())
    scene = summary["scene"]
    loose = chip.run([*RUNNER, "--scenes", scene, "--labels", str(scenes["truth"]), "--output", str(tmp_path / "a")])
    strict = chip.run([*RUNNER, "--scenes", scene, "--labels", str(scenes["truth"]), "--min_label_coverage", "0.2",
                       "--output", str(tmp_path / "b")])
    assert loose["written"] == strict["written"] == 16
    roads = lambda folder: sum("road" in labels.decode(c.labels) for c in read_chips(folder))  # noqa: E731
    # Roads are 5 m wide: a road crossing a 768 m chip covers about 1 % of it, never 20 %.
    assert roads(tmp_path / "a") >= 1 and roads(tmp_path / "b") == 0


def test_screening_by_clear_fraction_fails_a_scene_without_a_udm2(scenes, tmp_path):
    """``--skip_cloudier_than`` on a scene that has no UDM2: its tiles cannot be screened, so the scene fails
    with a counted error line instead of passing every chip off as clear; with a UDM2 beside it, it is kept."""
    from pipelines.sources import synthetic

    folder = tmp_path / "scenes"
    spec = synthetic.SceneSpec(seed=9, width=512, height=512)
    synthetic.write_scene(spec, folder)
    (folder / f"{spec.scene_id}_udm2.tif").unlink()
    kept = synthetic.SceneSpec(seed=10, width=512, height=512, col=3, cloud_probability=0.0, haze_probability=0.0)
    synthetic.write_scene(kept, folder)
    out = tmp_path / "out"
    manifest = chip.run(
        [*RUNNER, "--scenes", str(folder / "*.tif"), "--skip_cloudier_than", "0.5", "--output", str(out)]
    )
    assert manifest["scenes"][spec.scene_id] == {"written": 0, "skipped": 0, "failed": 1}
    assert manifest["scenes"][kept.scene_id]["written"] == 4
    (line,) = [e for e in errors(out) if e["scene_id"] == spec.scene_id]
    assert line["reason"].startswith("cloud mask:") and "has no cloud mask" in line["reason"]
