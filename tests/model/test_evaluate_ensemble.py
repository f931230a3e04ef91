"""Evaluation, weather decoding, test-time augmentation and ensembles."""

import dataclasses
import json
import re
import shutil

import keras
import numpy as np
import pytest
from sklearn.metrics import fbeta_score, precision_score, recall_score

from planet_core.errors import UserError
from planet_core.labels import LABEL_INDEX, LABELS, WEATHER_INDICES
from planet_model import bundle, ensemble, evaluate, thresholds
from tests.conftest import refused
from tests.model.test_bundle_meta import VALID


def test_relative_weather_decoding_keeps_the_weather_label_largest_against_its_threshold():
    cut = np.full(len(LABELS), 0.5)
    cut[LABEL_INDEX["haze"]] = 0.2
    p = np.full((3, len(LABELS)), 0.1)
    p[0, [LABEL_INDEX["clear"], LABEL_INDEX["cloudy"]]] = 0.9, 0.8      # two pass: clear (1.8x) wins
    p[1, LABEL_INDEX["haze"]], p[1, LABEL_INDEX["clear"]] = 0.15, 0.3  # none passes: haze 0.75x beats clear 0.6x
    p[2, LABEL_INDEX["primary"]] = 0.9  # all weather at 0.1: haze (0.1 / 0.2) beats the rest (0.1 / 0.5)
    on = thresholds.apply(p, cut, weather_one=True)
    assert (on == thresholds.apply(p, cut, thresholds.WEATHER_RELATIVE)).all(), "the default decoding"
    weather = [LABELS[i] for i in WEATHER_INDICES]
    assert [[w for w in weather if on[r, LABEL_INDEX[w]]] for r in range(3)] == [["clear"], ["haze"], ["haze"]]
    assert on[2, LABEL_INDEX["primary"]] and not on[0, LABEL_INDEX["primary"]]
    assert (thresholds.apply(p, cut)[:, WEATHER_INDICES].sum(axis=1) == [2, 0, 0]).all()  # without it


def test_weather_first_decoding_takes_the_likeliest_weather_and_a_cloudy_chip_has_no_land():
    cut = np.full(len(LABELS), 0.5)
    cut[LABEL_INDEX["haze"]] = 0.2
    p = np.full((4, len(LABELS)), 0.1)
    p[0, [LABEL_INDEX["clear"], LABEL_INDEX["cloudy"]]] = 0.9, 0.8      # clear, the likelier
    p[1, LABEL_INDEX["haze"]], p[1, LABEL_INDEX["clear"]] = 0.15, 0.3  # clear: probabilities, not ratios
    p[2, LABEL_INDEX["partly_cloudy"]], p[2, LABEL_INDEX["road"]] = 0.4, 0.7
    p[3, [LABEL_INDEX["cloudy"], LABEL_INDEX["primary"], LABEL_INDEX["agriculture"]]] = 0.7, 0.9, 0.8
    on = thresholds.apply(p, cut, thresholds.WEATHER_FIRST)
    named = [[LABELS[j] for j in np.flatnonzero(row)] for row in on]
    assert named == [["clear"], ["clear"], ["partly_cloudy", "road"], ["cloudy"]]
    with pytest.raises(ValueError, match="weather decoding 'softmax'"):
        thresholds.apply(p, cut, "softmax")


def test_figures_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.random((200, len(LABELS))) < 0.3
    y[:, WEATHER_INDICES] = False
    y[np.arange(200), rng.choice(WEATHER_INDICES, 200)] = True
    p = np.clip(y * 0.6 + rng.random(y.shape) * 0.5, 0, 1)
    cut = np.full(len(LABELS), 0.45)
    got = evaluate.figures(y, p, cut)
    pred = p >= cut
    assert got["mean_f2"]["bundle_thresholds"] == pytest.approx(fbeta_score(y, pred, beta=2, average="samples",
                                                                             zero_division=0))
    assert got["mean_f2"]["at_0.5"] == pytest.approx(fbeta_score(y, p >= 0.5, beta=2, average="samples",
                                                                  zero_division=0))
    j = LABEL_INDEX["road"]
    assert got["per_label"]["road"]["precision"] == pytest.approx(precision_score(y[:, j], pred[:, j], zero_division=0))
    assert got["per_label"]["road"]["recall"] == pytest.approx(recall_score(y[:, j], pred[:, j], zero_division=0))
    assert got["per_label"]["road"]["support"] == int(y[:, j].sum())
    assert got["weather_consistency"]["truth"] == 1.0
    assert got["weather_consistency"]["predicted"] == pytest.approx(
        (pred[:, WEATHER_INDICES].sum(axis=1) == 1).mean())
    weather_one = thresholds.apply(p, cut, True)
    assert got["mean_f2"]["bundle_thresholds_weather_one"] == pytest.approx(
        fbeta_score(y, weather_one, beta=2, average="samples", zero_division=0))
    # Thresholds searched on the data can only do as well or better than fixed ones on it.
    assert got["mean_f2"]["searched_thresholds"] >= got["mean_f2"]["bundle_thresholds"]
    # "searched, one weather label": the searched thresholds (as the file lists them), then the decoding.
    searched = np.array([got["searched_thresholds"][n] for n in LABELS])
    assert not np.allclose(searched, cut)
    assert got["mean_f2"]["searched_thresholds_weather_one"] == pytest.approx(
        fbeta_score(y, thresholds.apply(p, searched, True), beta=2, average="samples", zero_division=0))
    assert got["mean_f2"]["searched_thresholds_weather_one"] != pytest.approx(
        got["mean_f2"]["bundle_thresholds_weather_one"])


def test_figures_count_a_probability_at_the_cut_as_on_and_weather_other_than_one_as_inconsistent():
    """At 0.5 a label of probability exactly 0.5 is on; chips with two weather labels or none are the share
    of the truth that is not one weather label a chip."""
    y = np.zeros((4, len(LABELS)), bool)
    y[0, [LABEL_INDEX["clear"], LABEL_INDEX["primary"]]] = True
    y[1, [LABEL_INDEX["clear"], LABEL_INDEX["haze"]]] = True  # two weather labels
    y[2, LABEL_INDEX["primary"]] = True  # none
    y[3, LABEL_INDEX["cloudy"]] = True
    p = np.where(y, 0.5, 0.1)
    got = evaluate.figures(y, p, np.full(len(LABELS), 0.45))
    assert got["mean_f2"]["at_0.5"] == 1.0
    assert got["weather_consistency"]["truth"] == 0.5


def _invariant(chip=32, bands=3):
    """A model that sees only each band's mean: invariant under every rotation and flip by construction."""
    inputs = keras.Input((chip, chip, bands))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="sigmoid")(x), name="mean_only")


def _directional(chip=32, bands=3):
    """A model that sees where things are: rotations change its answer."""
    inputs = keras.Input((chip, chip, bands))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="sigmoid")(x), name="where")


def test_tta_of_an_invariant_model_changes_nothing_and_of_another_does():
    chips = np.random.default_rng(0).random((6, 32, 32, 3)).astype(np.float32)
    bands = ["red", "green", "blue"]
    invariant = _invariant()
    plain = invariant.predict_on_batch(chips)
    tta = ensemble.combine([invariant], [bands], bands, 32, tta=True)
    assert len([layer for layer in tta.layers if layer.__class__.__name__ == "Dihedral"]) == 8
    np.testing.assert_allclose(
        tta.predict_on_batch(chips), plain, rtol=1e-5, atol=1e-6
    )  # float32 sums in another order
    directional = _directional()
    averaged = ensemble.combine([directional], [bands], bands, 32, tta=True).predict_on_batch(chips)
    assert np.abs(averaged - directional.predict_on_batch(chips)).max() > 1e-3
    # The 8 views are the 8 distinct symmetries: the mean over them equals the mean of rot90/transpose views.
    views = [np.rot90(c, k, axes=(0, 1)) for c in chips[:1] for k in range(4)]
    views += [v.transpose(1, 0, 2) for v in views]
    expected = np.mean([directional.predict_on_batch(v[None])[0] for v in views], axis=0)
    np.testing.assert_allclose(averaged[0], expected, atol=1e-5)


def test_members_get_their_own_bands():
    chips = np.random.default_rng(1).random((4, 32, 32, 4)).astype(np.float32)
    rgb, rgbn = _directional(bands=3), _directional(bands=4)
    model = ensemble.combine([rgb, rgbn], [["red", "green", "blue"], ["red", "green", "blue", "nir"]],
                             ["red", "green", "blue", "nir"], 32, tta=False)
    expected = (rgb.predict_on_batch(chips[..., :3]) + rgbn.predict_on_batch(chips)) / 2
    np.testing.assert_allclose(model.predict_on_batch(chips), expected, atol=1e-6)


def test_evaluate_on_the_validation_split_gives_the_bundles_own_figures(simple_bundle, tmp_path):
    report = evaluate.run(["--bundle", simple_bundle["path"], "--data", *simple_bundle["data"], "--split",
                           "validation", "--output", str(tmp_path)])
    (result,) = report["bundles"]
    meta = simple_bundle["meta"]
    # The split is rebuilt exactly: same chips, same predictions, so the F2 at the bundle's thresholds (searched
    # on that split in training) is the one training recorded.
    assert result["chips"] == meta.metrics["validation_chips"]
    assert result["mean_f2"]["bundle_thresholds"] == pytest.approx(meta.metrics["searched"], abs=1e-6)
    assert result["mean_f2"]["at_0.5"] == pytest.approx(meta.metrics["at_0.5"], abs=1e-6)
    assert (tmp_path / "current" / meta.version / "f2_vs_threshold.png").stat().st_size > 0
    assert report["folder"] == str(tmp_path / "current")
    assert json.loads((tmp_path / "current" / "evaluation.json").read_text()) == json.loads(json.dumps(
        {k: v for k, v in report.items() if k != "folder"}))
    every = evaluate.run(["--bundle", simple_bundle["path"], "--data", *simple_bundle["data"], "--output",
                          str(tmp_path)])
    assert every["bundles"][0]["chips"] == meta.metrics["validation_chips"] + meta.metrics["training_chips"]


def test_validation_split_of_other_chips_is_refused(simple_bundle, tmp_path):
    original = simple_bundle["meta"]
    split = {**original.training["split"], "validation_keys_sha256": "0" * 64}  # as if trained on other chips
    meta = dataclasses.replace(original, training={**original.training, "split": split})
    with pytest.raises(UserError, match="not the chips bundle"):
        evaluate.load_chips(simple_bundle["data"], meta, "validation")
    # Chips of another size, type or bands than the bundle reads are refused, naming both.
    for changed, message in (({"chip_size": 2 * original.chip_size}, f"the bundle reads {2 * original.chip_size}-px"),
                             ({"dtype": "float64"}, "the bundle reads .*float64"),
                             ({"bands": (*original.bands, "swir16")}, "the bundle reads")):
        with pytest.raises(UserError, match=message):
            evaluate.load_chips(simple_bundle["data"], dataclasses.replace(original, **changed), "all")


def test_an_ensemble_of_one_bundle_is_that_bundle(simple_bundle, tmp_path):
    out = tmp_path / "ensemble"
    meta = ensemble.run(["--bundle", simple_bundle["path"], "--data", *simple_bundle["data"], "--output", str(out)])
    original = simple_bundle["meta"]
    assert meta.thresholds == original.thresholds
    assert meta.metrics["searched"] == pytest.approx(original.metrics["searched"], abs=1e-6)
    assert (meta.arch, meta.tta, meta.bands) == ("ensemble", False, original.bands)
    loaded = bundle.read_metadata(str(out))
    data = evaluate.load_chips(simple_bundle["data"], loaded, "validation")
    ours, _ = evaluate.predict(bundle.load_model(str(out), loaded), data, loaded.bands)
    theirs, _ = evaluate.predict(bundle.load_model(simple_bundle["path"], original), data, original.bands)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_a_bundle_with_tta_is_the_mean_of_its_answers_on_the_8_views_and_twice_is_refused(simple_bundle, tmp_path,
                                                                                           capsys):
    """Members as bundles load them (a loaded model answers with a list): TTA over a bundle is the mean of its
    answers on the 8 views, worked out here with numpy. One model twice (its folder or a copy of it) is
    refused: that ensemble predicts what the model does alone, under another name."""
    copy = tmp_path / "copy"
    shutil.copytree(simple_bundle["path"], copy)
    stderr = refused(capsys, "ensemble", "--bundle", simple_bundle["path"], "--bundle", str(copy), "--tta",
                     "--data", *simple_bundle["data"], "--output", str(tmp_path / "twice"))
    assert f"--bundle {copy}: the same model as --bundle {simple_bundle['path']}" in stderr
    out = tmp_path / "tta"
    meta = ensemble.run(["--bundle", simple_bundle["path"], "--tta", "--data", *simple_bundle["data"],
                         "--output", str(out)])
    assert meta.tta and len(meta.training["members"]) == 1
    loaded = bundle.read_metadata(str(out))
    data = evaluate.load_chips(simple_bundle["data"], loaded, "validation")
    from planet_model import data as chipdata

    x, _ = next(iter(chipdata.dataset(data.files, data.info, loaded.bands, data.keys[:4], 4, training=False)))
    x = x.numpy()
    original = bundle.load_model(simple_bundle["path"])
    views = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    views += [v.transpose(0, 2, 1, 3) for v in views]
    expected = np.mean([np.asarray(original.predict_on_batch(v)) for v in views], axis=0)
    np.testing.assert_allclose(bundle.load_model(str(out)).predict_on_batch(x), expected, rtol=1e-4, atol=1e-5)


def _meta(bands, mean, *, chip_size=256, dtype="uint16", product="analytic", gsd_m=3.0, ranges=True):
    """A member's metadata as ``bundle.json`` gives it: normalization and value ranges (unless not
    ``ranges``: an older bundle's) per band from ``mean``."""
    return bundle.BundleMeta.from_json({
        **VALID, "bands": list(bands), "chip_size": chip_size, "dtype": dtype,
        "normalization": {"mean": [mean + i for i in range(len(bands))], "variance": [10.0 * mean] * len(bands)},
        "domain": {"gsd_m": gsd_m, "product": product, "dtype": dtype, "bands": list(bands),
                   "band_ranges": {b: [mean, mean + 100 + i] for i, b in enumerate(bands)} if ranges else {}}})


def test_an_ensembles_bands_are_the_members_union_in_record_order_described_by_the_first_that_reads_each():
    nir_red, rgb = _meta(("nir", "red"), 10.0), _meta(("blue", "green", "red"), 20.0)
    common = ensemble._common([nir_red, rgb])
    assert common["bands"] == ["red", "green", "blue", "nir"]
    # red from the first member (its 2nd band), green and blue from the second, nir from the first
    assert common["normalization"] == {"mean": [11.0, 21.0, 20.0, 10.0], "variance": [100.0, 200.0, 200.0, 100.0]}
    assert common["domain"]["band_ranges"] == {"red": [10.0, 111.0], "green": [20.0, 121.0],
                                               "blue": [20.0, 120.0], "nir": [10.0, 110.0]}
    assert common["domain"]["bands"] == common["bands"] and common["domain"]["product"] == "analytic"
    # A member that does not know its value ranges leaves the ensemble's unknown, not [0, 0] (every tile
    # of a scan would be out of domain); a bundle can then be written with them.
    for members in ([_meta(("nir", "red"), 10.0, ranges=False), rgb], [rgb, _meta(("nir",), 10.0, ranges=False)]):
        common = ensemble._common(members)
        assert common["domain"]["band_ranges"] == {}
        bundle.validate({**dataclasses.asdict(rgb), **common, "format_version": bundle.FORMAT_VERSION})


@pytest.mark.parametrize(("change", "message"), [
    ({"chip_size": 128}, "read different chips (chip_size 256, 128)"),
    ({"dtype": "uint8"}, "read different chips (dtype uint16, uint8)"),
    ({"product": "surface_reflectance"}, "learned from different imagery (domain.product"),
    ({"gsd_m": 4.77}, "learned from different imagery (domain.gsd_m ['3.0', '4.77'])"),
])
def test_members_of_other_chips_or_imagery_are_refused(change, message):
    with pytest.raises(UserError, match=f"^--bundle: the members {re.escape(message)}"):
        ensemble._common([_meta(("red", "green", "blue"), 1.0), _meta(("red", "green", "blue"), 1.0, **change)])


def test_an_ensemble_written_over_one_of_its_members_is_refused(tmp_path, capsys):
    """Before any member is read; the member stays as it was, whichever way its folder is spelled."""
    member = tmp_path / "member"
    member.mkdir()
    (member / "bundle.json").write_text("{}")
    (tmp_path / "link").symlink_to(member)
    for output in (str(member), f"{tmp_path}/./member/", str(tmp_path / "link")):
        stderr = refused(capsys, "ensemble", "--bundle", str(tmp_path / "other"), "--bundle", str(member),
                         "--data", "chips", "--output", output)
        assert f"--output {output}: one of the members (--bundle)" in stderr
    assert (member / "bundle.json").read_text() == "{}"
