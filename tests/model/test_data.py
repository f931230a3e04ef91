"""The chip set facts training relies on: one layout, one product, the ground sample distance."""

import numpy as np
import pytest
import tensorflow as tf

from planet_core import imagery, labels
from planet_model import data, records


def write(path, chips):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for chip in chips:
            writer.write(records.encode(chip))
    return str(path)


def chip(bands=imagery.RGB, dtype="uint16", name="c", product=imagery.ANALYTIC, gsd=3.0008):
    image = np.full((8, 8, len(bands)), 7, dtype=dtype)
    return records.Chip(image, bands, name, name, labels=labels.encode(["clear"]), gsd_m=gsd, product=product)


def test_chip_files_of_different_layouts_are_named_before_training(tmp_path):
    rgb = write(tmp_path / "chips-a-00000-of-00001.tfrecord", [chip(name="a")])
    rgbn = write(tmp_path / "chips-b-00000-of-00001.tfrecord", [chip(imagery.RGBN, name="b")])
    byte = write(tmp_path / "chips-c-00000-of-00001.tfrecord", [chip(dtype="uint8", name="c")])
    with pytest.raises(ValueError, match="differ in layout") as refused:
        data.peek([rgb, rgbn, byte])
    assert all(path in str(refused.value) for path in (rgb, rgbn, byte))
    assert data.peek([rgb]) == data.DataInfo("uint16", (8, 8, 3), imagery.RGB)


def test_domain_facts_are_the_median_gsd_to_the_centimetre_and_one_product(tmp_path):
    files = [
        write(tmp_path / "chips-a.tfrecord", [chip(name=f"a{i}", gsd=g) for i, g in enumerate((3.0008, 3.0011, 2.9))])
    ]
    assert data.domain_facts(data.index(files, data.peek(files))) == (3.0, imagery.ANALYTIC)
    basemap = [write(tmp_path / "chips-b.tfrecord", [chip(name=f"b{i}", gsd=g) for i, g in enumerate((4.7701, 4.7712,
                                                                                                      4.8))])]
    assert data.domain_facts(data.index(basemap, data.peek(basemap)))[0] == 4.77  # NICFI quads' 4.77 m
    mixed = [write(tmp_path / "chips-m.tfrecord", [chip(name="v", product=imagery.VISUAL), chip(name="a")])]
    with pytest.raises(ValueError, match="mix products"):
        data.domain_facts(data.index(mixed, data.peek(mixed)))


def test_train_names_unlabelled_or_mixed_chip_files_in_one_line(tmp_path, capsys):
    """Chips made without --labels would fail mid-epoch in TensorFlow's parser, naming no file; mixed
    layouts would fail on the first batch. Both are refused before training, naming --data and the file."""
    from pipelines.cli import main

    unlabelled = records.Chip(np.full((8, 8, 3), 7, np.uint16), imagery.RGB, "u", "u")
    cases = [("unlabelled", [("chips-u-00000-of-00001.tfrecord", [unlabelled])], "holds chips without labels"),
             ("mixed", [("chips-a-00000-of-00001.tfrecord", [chip(name="a")]),
                        ("chips-b-00000-of-00001.tfrecord", [chip(imagery.RGBN, name="b")])], "differ in layout")]
    for folder, files, message in cases:
        (tmp_path / folder).mkdir()
        for name, chips in files:
            write(tmp_path / folder / name, chips)
        with pytest.raises(SystemExit) as stopped:
            main(["train", "--data", str(tmp_path / folder / "*.tfrecord"), "--output",
                  str(tmp_path / f"{folder}-bundle"), "--arch", "simple_cnn", "--weights", "none"])
        err = capsys.readouterr().err.strip().splitlines()
        assert stopped.value.code == 2 and len(err) == 1, err
        assert (
            err[0].startswith(f"planet-tiles train: --data {tmp_path / folder / '*.tfrecord'}: ") and message in err[0]
        )
