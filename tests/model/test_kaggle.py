"""The Kaggle data set's files as published: real JPG and TIF chips decoded against GDAL's own reading of
them, the format of a folder, the ground pixel of a thumbnail, the submission CSV."""

import shutil

import numpy as np
import pytest
import rasterio

from planet_core.errors import UserError
from planet_model import kaggle
from tests.conftest import SHARED

CHIPS = SHARED / "planet" / "chips"
JPG = sorted((CHIPS / "jpg").glob("train_*.jpg"))[0]
TIF = sorted((CHIPS / "tif").glob("train_*.tif"))[0]


def test_a_jpg_is_red_green_blue_as_gdal_decodes_it():
    image, bands = kaggle.read_image(str(JPG), "jpg")
    with rasterio.open(JPG) as src:  # GDAL's libjpeg: RGB, within a level of OpenCV's decoder
        gdal = src.read().transpose(1, 2, 0).astype(int)
    assert bands == ("red", "green", "blue") and image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - gdal).max() <= 2
    assert np.abs(image[..., ::-1].astype(int) - gdal).mean() > 5  # blue and red are told apart


def test_a_tif_is_reordered_from_blue_green_red_nir():
    image, bands = kaggle.read_image(str(TIF), "tif")
    with rasterio.open(TIF) as src:
        blue, green, red, nir = src.read()
    assert bands == ("red", "green", "blue", "nir") and image.dtype == np.uint16
    assert np.array_equal(image, np.stack([red, green, blue, nir], axis=-1))


def test_images_that_are_not_chips_are_value_errors(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="not a decodable JPEG"):
        kaggle.read_image(str(tmp_path / "x.jpg"), "jpg")
    with rasterio.open(TIF) as src:
        profile, pixels = src.profile, src.read()
    profile.update(count=3)
    with rasterio.open(tmp_path / "three.tif", "w", **profile) as dst:
        dst.write(pixels[:3])
    with pytest.raises(ValueError, match=r"expected 4 bands \(blue, green, red, nir\), found 3"):
        kaggle.read_image(str(tmp_path / "three.tif"), "tif")
    with pytest.raises(FileNotFoundError):
        kaggle.read_image(str(tmp_path / "gone.jpg"), "jpg")


def test_a_thumbnail_covers_the_same_768_m():
    assert [kaggle.gsd_of(n) for n in (256, 128, 32)] == [3.0, 6.0, 24.0]


def test_a_folders_format_is_what_it_holds(tmp_path):
    with pytest.raises(UserError, match=f"--kaggle_images {tmp_path}: no .jpg or .tif images there"):
        kaggle.image_format(str(tmp_path), None)
    shutil.copy(JPG, tmp_path / "test_0.jpg")
    assert kaggle.image_format(str(tmp_path), None) == "jpg"
    shutil.copy(TIF, tmp_path / "test_1.tif")
    with pytest.raises(UserError, match="holds both .jpg and .tif images: pass --kaggle_format jpg or tif"):
        kaggle.image_format(str(tmp_path), None)
    assert kaggle.image_format(str(tmp_path), "tif") == "tif"
    assert kaggle.image_names(str(tmp_path), "jpg") == ["test_0"]


def test_a_submission_lists_tags_in_label_order_and_refuses_unknown_ones(tmp_path):
    path = tmp_path / "s.csv"
    assert kaggle.write_submission(str(path), [("test_1", ["road", "primary", "clear"]), ("test_0", [])]) == 2
    assert path.read_text() == "image_name,tags\ntest_1,clear primary road\ntest_0,\n"
    with pytest.raises(ValueError, match=r"test_2: unknown tags \['forest'\]"):
        kaggle.write_submission(str(path), [("test_2", ["primary", "forest"])])
