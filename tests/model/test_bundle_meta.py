"""``bundle.json`` validation without a model: every field a scan relies on at its bounds, every problem named
in one error, and the Keras file checked to be whole. The oracle is the format as the bundle module's
docstring states it."""

import copy
import json
import zipfile

import pytest

from planet_core.labels import LABELS
from planet_model import bundle

VALID = {
    "format_version": bundle.FORMAT_VERSION, "labels": list(LABELS), "thresholds": dict.fromkeys(LABELS, 0.5),
    "chip_size": 256, "input_size": 140, "bands": ["red", "green", "blue", "nir"], "dtype": "uint16",
    "domain": {"gsd_m": 3.0, "product": "analytic", "dtype": "uint16", "bands": ["red", "green", "blue", "nir"],
               "band_ranges": {"red": [100, 9000], "green": [100, 9000], "blue": [100, 9000], "nir": [0, 9000]}},
    "normalization": {"mean": [1.0] * 4, "variance": [2.0] * 4}, "arch": "inception_v3",
    "model_file": "model.keras", "version": "0123456789abcdef", "created_at": "2026-06-01T00:00:00+00:00",
    "training": {}, "metrics": {},
}


def changed(path, value):
    """``VALID`` with the key at ``path`` (dotted) set to ``value``, or removed when ``value`` is ``...``."""
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    holder = doc
    for key in parents:
        holder = holder[key]
    if value is ...:
        del holder[last]
    else:
        holder[last] = value
    return doc


@pytest.mark.parametrize(("path", "value"), [
    ("thresholds.road", 0.0), ("thresholds.road", 1.0), ("thresholds.road", 1),  # the cut's ends are cuts
    ("domain.gsd_m", None), ("domain.gsd_m", 0.5), ("domain.band_ranges", {}),
    ("domain.band_ranges.red", [5, 5]),  # a constant band: low == high
    ("bands", ["red", "green", "blue"]), ("chip_size", 32),
])
def test_what_a_valid_bundle_may_hold(path, value):
    doc = changed(path, value)
    if path == "bands":
        doc["normalization"] = {"mean": [1.0] * 3, "variance": [2.0] * 3}
        doc["domain"]["band_ranges"] = {}
    meta = bundle.BundleMeta.from_json(doc)
    assert meta.cuts == [float(doc["thresholds"][name]) for name in LABELS]


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("thresholds.road", -0.01, "thresholds outside [0, 1] or not numbers: ['road']"),
    ("thresholds.road", 1.01, "thresholds outside [0, 1] or not numbers: ['road']"),
    ("thresholds.road", "0.5", "thresholds outside [0, 1] or not numbers: ['road']"),
    ("thresholds.road", ..., "thresholds missing for ['road']"),
    ("thresholds", [0.5] * 17, "thresholds must map label -> number"),
    ("labels", list(reversed(LABELS)), "labels differ from the 17 labels in the project's order"),
    ("labels", list(LABELS)[:-1], "labels differ"),
    ("bands", [], "bands []: use names among"),
    ("bands", ["red", "swir16", "blue", "nir"], "bands ['red', 'swir16', 'blue', 'nir']: use names among"),
    ("dtype", "float64", "dtype 'float64' not in"),
    ("domain", "analytic", "domain must be an object"),
    ("domain.product", "photograph", "domain.product 'photograph' not in"),
    ("domain.gsd_m", -3.0, "domain.gsd_m -3.0 must be positive"),
    ("domain.gsd_m", 0, "domain.gsd_m 0 must be positive"),
    ("domain.band_ranges.red", [9000, 100], "domain.band_ranges needs [low, high] for each band"),
    ("domain.band_ranges.red", [100], "domain.band_ranges needs [low, high] for each band"),
    ("domain.band_ranges.nir", ..., "domain.band_ranges needs [low, high] for each band"),
    ("normalization.mean", [1.0] * 3, "normalization needs a mean and a variance per band"),
    ("normalization.variance", [2.0] * 5, "normalization needs a mean and a variance per band"),
    ("chip_size", 0, "chip_size 0 must be a positive whole number of pixels"),
    ("input_size", "140", "input_size '140' must be a positive whole number of pixels"),
    ("input_size", 140.5, "input_size 140.5 must be a positive whole number of pixels"),
    ("version", ..., "missing key 'version'"),
    ("format_version", bundle.FORMAT_VERSION + 1, f"format_version {bundle.FORMAT_VERSION + 1}, this code reads"),
])
def test_each_problem_is_named(path, value, problem):
    with pytest.raises(bundle.BundleError, match="^gs://b/m: invalid bundle: ") as error:
        bundle.BundleMeta.from_json(changed(path, value), "gs://b/m")
    assert problem in str(error.value)


def test_every_problem_in_one_error():
    doc = changed("dtype", "int8")
    doc["thresholds"]["water"] = 2
    doc["domain"]["product"] = "x"
    with pytest.raises(bundle.BundleError) as error:
        bundle.validate(doc)
    assert str(error.value).count(";") == 2


def test_a_bundle_folder_needs_its_description_and_a_whole_keras_file(tmp_path):
    with pytest.raises(bundle.BundleError, match=f"^{tmp_path}: not a bundle \\(bundle.json not found\\)$"):
        bundle.read_metadata(str(tmp_path))
    (tmp_path / "bundle.json").write_text("{")
    with pytest.raises(bundle.BundleError, match="bundle.json: not valid JSON"):
        bundle.read_metadata(str(tmp_path))
    (tmp_path / "bundle.json").write_text("[]")
    with pytest.raises(bundle.BundleError, match="not a bundle description"):
        bundle.read_metadata(str(tmp_path))
    (tmp_path / "bundle.json").write_text(json.dumps(VALID))
    with pytest.raises(bundle.BundleError, match="model file 'model.keras' not found"):
        bundle.read_metadata(str(tmp_path))
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * 4096)
    with pytest.raises(bundle.BundleError, match="are not the pair of version 0123456789abcdef"):
        bundle.read_metadata(str(tmp_path))  # the version of another model
    version = bundle.content_version((tmp_path / "model.keras").read_bytes(), VALID["thresholds"])
    (tmp_path / "bundle.json").write_text(json.dumps({**VALID, "version": version}))
    assert bundle.read_metadata(str(tmp_path)).arch == "inception_v3"
    whole = (tmp_path / "model.keras").read_bytes()
    (tmp_path / "model.keras").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(bundle.BundleError, match="not a complete Keras file"):
        bundle.read_metadata(str(tmp_path))
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(bundle.BundleError, match="not a complete Keras file"):
        bundle.read_metadata(str(tmp_path))
