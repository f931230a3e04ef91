"""``planet-tiles predict``: a Kaggle submission from test images laid out as the competition publishes
them (``test-jpg/test_N.jpg``, ``test-jpg-additional/file_N.jpg``), made here from real Kaggle chips."""

import csv
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from planet_core.errors import UserError
from planet_core.labels import LABELS
from planet_model import predict
from tests import bundles
from tests.conftest import SHARED

JPGS = sorted((SHARED / "planet" / "chips" / "jpg").glob("train_*.jpg"))


def tiny_bundle(folder, product="visual", bands=("red", "green", "blue"), dtype="uint8", mean=90.0,
                variance=900.0, gain=1.0):
    """An untrained 256-px bundle (:func:`tests.bundles.tiny`) with a threshold per label from 0.3 to 0.7 and
    the dtype's whole range for each band; ``(model, thresholds)``."""
    thresholds = {name: float(t) for name, t in zip(LABELS, np.linspace(0.3, 0.7, len(LABELS)))}
    top = 255 if dtype == "uint8" else 65535
    net, _ = bundles.tiny(folder, chip_size=256, input_size=64, bands=bands, dtype=dtype, product=product, mean=mean,
                          variance=variance, thresholds=thresholds, band_ranges={b: (0, top) for b in bands},
                          gain=gain)
    return net, thresholds


@pytest.fixture()
def test_images(tmp_path):
    """5 test_N.jpg and 2 file_N.jpg copied from real chips, one more test image that is not a JPEG, and a
    sample submission that also lists an image no folder holds."""
    main, extra = tmp_path / "test-jpg", tmp_path / "test-jpg-additional"
    main.mkdir()
    extra.mkdir()
    names = {}
    for i, source in enumerate(JPGS[:5]):
        shutil.copy(source, main / f"test_{i}.jpg")
        names[f"test_{i}"] = main / f"test_{i}.jpg"
    for i, source in enumerate(JPGS[5:7]):
        shutil.copy(source, extra / f"file_{i}.jpg")
        names[f"file_{i}"] = extra / f"file_{i}.jpg"
    (main / "test_5.jpg").write_bytes(b"not a jpeg at all")
    sample = tmp_path / "sample_submission_v2.csv"
    listed = ["test_0", "test_1", "test_2", "test_3", "test_4", "test_5", "file_0", "file_1", "file_9"]
    sample.write_text("image_name,tags\n" + "".join(f"{n},primary clear\n" for n in listed))
    return {"main": main, "extra": extra, "sample": sample, "listed": listed, "readable": names}


def test_submission_rows_are_the_models_tags_in_the_competitions_format(tmp_path, test_images):
    net, thresholds = tiny_bundle(tmp_path / "bundle", gain=40.0)
    out = tmp_path / "submission.csv"
    result = predict.run(
        [
            "--bundle",
            str(tmp_path / "bundle"),
            "--kaggle_images",
            str(test_images["main"]),
            "--kaggle_images",
            str(test_images["extra"]),
            "--sample_submission",
            str(test_images["sample"]),
            "--output",
            str(out),
            "--batch_size",
            "3",
        ]
    )
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["image_name", "tags"]
    # One row per readable image, in the sample submission's order; the two others are reported.
    assert [r[0] for r in rows[1:]] == [n for n in test_images["listed"] if n in test_images["readable"]]
    assert sorted(p["image_name"] for p in result["problems"]) == ["file_9", "test_5"]
    assert "not a decodable JPEG" in next(p["reason"] for p in result["problems"] if p["image_name"] == "test_5")
    # The oracle: the same model on the images decoded by OpenCV here, thresholds applied by hand.
    swapped = 0
    for name, tags in rows[1:]:
        rgb = cv2.imread(str(test_images["readable"][name]), cv2.IMREAD_COLOR)[:, :, ::-1]
        p, p_bgr = net.predict(np.stack([rgb, rgb[..., ::-1]]).astype(np.float32), verbose=0)
        expected = [label for label, value in zip(LABELS, p) if value >= thresholds[label]]
        assert tags.split() == expected and all(t in LABELS for t in tags.split())
        swapped += expected != [label for label, value in zip(LABELS, p_bgr) if value >= thresholds[label]]
    assert swapped  # the model's tags tell red from blue, so the rows show the band order


@pytest.mark.slow  # other processes or servers: not for `make check`
def test_missing_images_fail_the_run_in_one_line(tmp_path, test_images):
    tiny_bundle(tmp_path / "bundle")
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "predict", "--bundle", str(tmp_path / "bundle"),
                             "--kaggle_images", str(test_images["main"]), "--kaggle_images", str(test_images["extra"]),
                             "--sample_submission", str(test_images["sample"]), "--output", str(tmp_path / "s.csv")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    # Nothing but the project's lines: TensorFlow's oneDNN banner and Keras' chatter stay off.
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("planet-tiles predict:")]
    assert "2 of 9 images have no row" in line and "Kaggle rejects" in line
    assert len((tmp_path / "s.csv.errors.jsonl").read_text().splitlines()) == 2


def test_a_bundle_of_another_product_is_refused(tmp_path, test_images):
    tiny_bundle(tmp_path / "bundle", product="analytic")
    with pytest.raises(UserError, match="trained on analytic imagery; .jpg images are visual"):
        predict.run(["--bundle", str(tmp_path / "bundle"), "--kaggle_images", str(test_images["main"]),
                     "--output", str(tmp_path / "s.csv")])


def test_weather_one_gives_every_image_exactly_one_weather_tag(tmp_path, test_images):
    net, thresholds = tiny_bundle(tmp_path / "bundle")
    plain, one = tmp_path / "plain.csv", tmp_path / "one.csv"
    common = ["--bundle", str(tmp_path / "bundle"), "--kaggle_images", str(test_images["extra"])]
    predict.run([*common, "--output", str(plain)])
    predict.run([*common, "--output", str(one), "--weather_one"])
    weather = {"clear", "cloudy", "haze", "partly_cloudy"}
    plain_rows = dict(list(csv.reader(plain.open()))[1:])
    for name, tags in list(csv.reader(one.open()))[1:]:
        rgb = cv2.imread(str(test_images["readable"][name]), cv2.IMREAD_COLOR)[:, :, ::-1]
        p = dict(zip(LABELS, net.predict(rgb[None].astype(np.float32), verbose=0)[0]))
        best = max(weather, key=lambda w: p[w] / thresholds[w])  # worked out here, not by the code under test
        assert [t for t in tags.split() if t in weather] == [best]
        assert [t for t in tags.split() if t not in weather] == [
            t for t in plain_rows[name].split() if t not in weather
        ]


@pytest.mark.parametrize("bands", [("red", "green", "blue", "nir"), ("nir", "red"), ("blue",)])
def test_tif_images_are_read_in_the_kaggle_band_order(tmp_path, bands):
    """The competition's TIFs hold blue, green, red, NIR (Planet's analytic order): the model gets the
    bands it names, whatever their order in the file, as rasterio reads them here."""
    import rasterio

    folder = tmp_path / "test-tif-v2"
    folder.mkdir()
    sources = sorted((SHARED / "planet" / "chips" / "tif").glob("train_*.tif"))[:4]
    for i, source in enumerate(sources):
        shutil.copy(source, folder / f"test_{i}.tif")
    net, thresholds = tiny_bundle(tmp_path / "bundle", product="analytic", bands=bands, dtype="uint16",
                                  mean=5000.0, variance=4e6, gain=40.0)
    out = tmp_path / "submission.csv"
    predict.run(["--bundle", str(tmp_path / "bundle"), "--kaggle_images", str(folder), "--output", str(out)])
    rows = dict(list(csv.reader(out.open()))[1:])
    file_order = ("blue", "green", "red", "nir")
    assert len(rows) == len(sources)
    for i in range(len(sources)):
        with rasterio.open(folder / f"test_{i}.tif") as src:
            pixels = src.read([file_order.index(b) + 1 for b in bands]).transpose(1, 2, 0).astype(np.float32)
        p = net.predict(pixels[None], verbose=0)[0]
        assert rows[f"test_{i}"].split() == [label for label, value in zip(LABELS, p) if value >= thresholds[label]]


def test_refusals_before_any_image_is_read(tmp_path, test_images):
    tiny_bundle(tmp_path / "bundle")
    common = ["--bundle", str(tmp_path / "bundle"), "--output", str(tmp_path / "s.csv")]
    main = ["--kaggle_images", str(test_images["main"])]
    with pytest.raises(UserError, match="^--batch_size 0: must be a positive number of images$"):
        predict.run([*common, *main, "--batch_size", "0"])
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,labels\ntest_0,primary\n")
    with pytest.raises(UserError, match=f"^--sample_submission {wrong}: not a submission CSV"):
        predict.run([*common, *main, "--sample_submission", str(wrong)])
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(test_images["main"] / "test_1.jpg", again / "test_1.jpg")
    with pytest.raises(UserError, match=f"test_1.jpg is in both {test_images['main']} and {again}"):
        predict.run([*common, *main, "--kaggle_images", str(again)])
    tifs = tmp_path / "test-tif-v2"
    tifs.mkdir()
    shutil.copy(sorted((SHARED / "planet" / "chips" / "tif").glob("train_*.tif"))[0], tifs / "test_9.tif")
    with pytest.raises(UserError, match="the folders hold different kinds of image"):
        predict.run([*common, *main, "--kaggle_images", str(tifs)])
    assert not (tmp_path / "s.csv").exists()


def test_a_bundle_of_an_unknown_product_predicts_and_an_image_of_another_size_is_a_problem(tmp_path, test_images):
    """A bundle that does not know its product (written before bundles recorded it) is not refused; an image
    that is not the bundle's size, in either direction, is reported and the others written."""
    tiny_bundle(tmp_path / "bundle", product="unknown")
    rgb = cv2.imread(str(test_images["readable"]["file_0"]), cv2.IMREAD_COLOR)
    cv2.imwrite(str(test_images["extra"] / "file_7.jpg"), rgb[:, :200])
    cv2.imwrite(str(test_images["extra"] / "file_8.jpg"), rgb[:200, :])
    result = predict.run(["--bundle", str(tmp_path / "bundle"), "--kaggle_images", str(test_images["extra"]),
                          "--output", str(tmp_path / "s.csv")])
    assert result["written"] == 2 and result["images"] == 4
    assert sorted((p["image_name"], p["reason"]) for p in result["problems"]) == [
        ("file_7", "ValueError: 200x256 px; the bundle reads 256x256"),
        ("file_8", "ValueError: 256x200 px; the bundle reads 256x256")]


def test_a_run_with_no_readable_image_keeps_the_earlier_submission_and_says_so(tmp_path, test_images):
    """Every image unreadable: the submission an earlier run wrote stays as it was (a header-only file replaced
    it); each run's error lines replace the earlier run's, none included, so a clean run leaves none standing
    beside its submission. An ``--output`` that is a folder is refused before any work."""
    tiny_bundle(tmp_path / "bundle")
    out = tmp_path / "s.csv"
    args = ["--bundle", str(tmp_path / "bundle"), "--output", str(out)]
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(2):
        (bad / f"test_{i}.jpg").write_bytes(JPGS[i].read_bytes()[:500])
    predict.run([*args, "--kaggle_images", str(bad)])
    assert not out.exists() and len((tmp_path / "s.csv.errors.jsonl").read_text().splitlines()) == 2
    good = predict.run([*args, "--kaggle_images", str(test_images["main"])])
    submission = out.read_text()
    assert good["written"] == 5 and (tmp_path / "s.csv.errors.jsonl").read_text().count("\n") == 1
    failed = predict.run([*args, "--kaggle_images", str(bad)])
    assert failed["written"] == 0 and len(failed["problems"]) == 2 and out.read_text() == submission
    clean = predict.run([*args, "--kaggle_images", str(test_images["extra"])])
    assert clean["problems"] == [] and (tmp_path / "s.csv.errors.jsonl").read_text() == ""
    with pytest.raises(UserError, match=f"--output {tmp_path}: a folder"):
        predict.run(["--bundle", str(tmp_path / "bundle"), "--kaggle_images", str(bad), "--output", str(tmp_path)])
