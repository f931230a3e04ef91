import numpy as np
import pytest

from planet_core import imagery, labels
from planet_model import records

KEYS = {"image/raw", "image/shape", "image/dtype", "image/bands", "tile/id", "tile/scene_id", "tile/crs",
        "tile/transform", "tile/bounds", "tile/valid_fraction", "tile/gsd_m", "image/product", "labels/multi_hot"}


@pytest.mark.parametrize("dtype,bands", [("uint8", imagery.RGB), ("uint16", imagery.RGBN), ("float32", imagery.RGBN)])
def test_round_trip(dtype, bands):
    rng = np.random.default_rng(0)
    image = (rng.random((256, 256, len(bands))) * 4000).astype(dtype)
    chip = records.Chip(image, bands, "s/1/2", "s", "EPSG:32721", (3, 0, 1e5, 0, -3, 9e6),
                        (-54.1, -9.9, -54.0, -9.8), 0.75, labels.encode(["clear", "primary"]), 3.0,
                        imagery.SURFACE_REFLECTANCE)
    back = records.decode(records.encode(chip))
    assert back.gsd_m == pytest.approx(3.0) and back.product == imagery.SURFACE_REFLECTANCE
    np.testing.assert_array_equal(back.image, image)
    assert back.image.dtype == np.dtype(dtype) and back.bands == bands
    assert (back.tile_id, back.scene_id, back.crs) == ("s/1/2", "s", "EPSG:32721")
    assert back.transform == pytest.approx(chip.transform) and back.bounds == pytest.approx(chip.bounds)
    assert back.valid_fraction == pytest.approx(0.75)
    assert labels.decode(back.labels) == ["clear", "primary"]


def test_layout_has_exactly_the_documented_keys_and_little_endian_pixels():
    import tensorflow as tf

    image = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3)
    data = records.encode(records.Chip(image, imagery.RGB, "k", "k"))
    feature = tf.train.Example.FromString(data).features.feature
    assert set(feature.keys()) == KEYS
    assert feature["image/raw"].bytes_list.value[0] == image.astype("<u2").tobytes()
    assert list(feature["image/shape"].int64_list.value) == [2, 3, 3]
    assert list(feature["labels/multi_hot"].int64_list.value) == []  # unlabelled
    assert records.decode(data).labels is None
    assert (records.decode(data).gsd_m, records.decode(data).product) == (None, imagery.UNKNOWN)


def test_records_written_before_gsd_and_product_read_as_unknown():
    import tensorflow as tf

    data = records.encode(
        records.Chip(
            np.zeros((2, 2, 3), np.uint8),
            imagery.RGB,
            "k",
            "k",
            labels=labels.encode(["clear"]),
            gsd_m=3.0,
            product=imagery.VISUAL,
        )
    )
    example = tf.train.Example.FromString(data)
    del example.features.feature["tile/gsd_m"]
    del example.features.feature["image/product"]
    old = example.SerializeToString()
    assert (records.decode(old).gsd_m, records.decode(old).product) == (None, imagery.UNKNOWN)
    parsed = tf.data.Dataset.from_tensors(old).map(records.parse_fn("uint8", (2, 2, 3))).get_single_element()
    assert float(parsed["gsd_m"]) == 0.0 and parsed["product"].numpy() == b"unknown"


def test_tf_data_parse_function():
    import tensorflow as tf

    image = np.full((8, 8, 4), 1234, dtype=np.uint16)
    data = records.encode(records.Chip(image, imagery.RGBN, "t", "s", labels=labels.encode(["haze"])))
    parsed = tf.data.Dataset.from_tensors(data).map(records.parse_fn("uint16", (8, 8, 4))).get_single_element()
    assert parsed["image"].dtype == tf.uint16 and parsed["image"].shape == (8, 8, 4)
    assert int(parsed["image"][3, 3, 2]) == 1234
    assert parsed["labels"].numpy()[labels.LABEL_INDEX["haze"]] == 1.0
    assert parsed["tile_id"].numpy() == b"t"


def test_bad_chips_are_refused():
    with pytest.raises(ValueError, match="bands"):
        records.Chip(np.zeros((4, 4, 3), np.uint8), ("blue", "green", "red"), "x", "x")
    with pytest.raises(ValueError, match="dtype"):
        records.Chip(np.zeros((4, 4, 3), np.int16), imagery.RGB, "x", "x")
    with pytest.raises(ValueError, match="product"):
        records.Chip(np.zeros((4, 4, 3), np.uint8), imagery.RGB, "x", "x", product="rendered")


@pytest.mark.parametrize("kwargs, message", [
    ({"image": np.zeros((4, 4), np.uint8)}, "chip x: image must be height x width x bands"),
    ({"image": np.zeros((4, 4, 4), np.uint8)}, "chip x: 4 bands but names ('red', 'green', 'blue')"),
    ({"transform": (3.0, 0.0, 1.0)}, "chip x: transform needs 6 numbers"),
    ({"bounds": (1.0, 2.0)}, "chip x: bounds need 4 numbers"),
    ({"labels": np.zeros(16)}, "chip x: labels need 17 entries"),
])
def test_each_malformed_chip_says_what_is_wrong(kwargs, message):
    args = {"image": np.zeros((4, 4, 3), np.uint8), "bands": imagery.RGB, "tile_id": "x", "scene_id": "x", **kwargs}
    with pytest.raises(ValueError) as raised:
        records.Chip(**args)
    assert str(raised.value) == message


def test_a_sub_metre_ground_pixel_round_trips():
    """A 0.5 m ground pixel (SkySat) is a ground pixel, not the 'unknown' that 0 stands for."""
    image = np.arange(4 * 4 * 3, dtype=np.uint16).reshape(4, 4, 3) * 300
    back = records.decode(records.encode(records.Chip(image, imagery.RGB, "x", "x", gsd_m=0.5)))
    np.testing.assert_array_equal(back.image, image)
    assert back.gsd_m == 0.5


def test_int64_values_are_twos_complement_varints_as_protobuf_reads_them():
    import tensorflow as tf

    values = [0, 1, 127, 128, 2**40, 2**63 - 1, -1, -(2**63)]
    assert list(tf.train.Feature.FromString(records._int64_feature(values)).int64_list.value) == values


@pytest.mark.parametrize("values", [[], [0, 1, 300, -1], [0.5, -2.25]])
def test_features_are_the_bytes_protobuf_itself_writes(values):
    """Each feature, empty ones included, is byte for byte what protobuf serialises for it (an empty list
    is an empty list message, not one holding an empty packed field)."""
    import tensorflow as tf

    if any(isinstance(v, float) for v in values) or not values:
        expected = tf.train.Feature(float_list=tf.train.FloatList(value=values)).SerializeToString()
        assert records._float_feature(values) == expected
    if not any(isinstance(v, float) for v in values):
        expected = tf.train.Feature(int64_list=tf.train.Int64List(value=values)).SerializeToString()
        assert records._int64_feature(values) == expected
