"""Model, loss, training and bundle: real TensorFlow on small synthetic data."""

import json
import re
import shutil

import keras
import numpy as np
import pytest

from pipelines import chip, demo
from pipelines.sources import synthetic
from planet_core import imagery
from planet_core.errors import UserError
from planet_core.labels import LABEL_INDEX, NUM_LABELS, WEATHER_INDICES
from planet_model import bundle, data, losses, metrics, model, thresholds, train
from planet_model.architectures import RECIPES
from tests.conftest import RUNNER, refused


def test_cooccurrence_loss_on_a_hand_computed_example():
    y_true = np.zeros((2, NUM_LABELS), np.float32)
    y_pred = np.full((2, NUM_LABELS), 0.5, np.float32)
    clear, haze = LABEL_INDEX["clear"], LABEL_INDEX["haze"]
    y_pred[0, clear], y_pred[0, haze] = 0.9, 0.4
    y_pred[1, clear], y_pred[1, haze] = 0.2, 0.7
    bce = float(np.mean(-np.log(1 - np.clip(y_pred, 1e-7, 1 - 1e-7))))
    c_y = y_pred.T @ y_pred
    weather = [LABEL_INDEX[n] for n in ("clear", "cloudy", "haze", "partly_cloudy")]
    expected_penalty = sum(c_y[i, j] for i in weather for j in weather if i != j)
    # clear-haze: 0.9*0.4 + 0.2*0.7 = 0.5 (twice, both orders); the other weather pairs are 0.5 each
    assert c_y[clear, haze] == pytest.approx(0.5)
    loss = losses.CooccurrenceLoss(weight=0.1)
    assert float(loss(y_true, y_pred)) == pytest.approx(bce + 0.1 * expected_penalty, rel=1e-4)
    assert float(losses.CooccurrenceLoss(weight=0.0)(y_true, y_pred)) == pytest.approx(bce, rel=1e-4)
    # The study's weight, 0.0001, unless told otherwise.
    assert float(losses.CooccurrenceLoss()(y_true, y_pred)) == pytest.approx(bce + 1e-4 * expected_penalty, rel=1e-5)


def test_penalty_from_labels_marks_pairs_never_seen_together():
    y = np.zeros((3, NUM_LABELS))
    y[0, [0, 12]] = 1
    y[1, [5, 12]] = 1
    y[2, [6]] = 1
    penalty = losses.penalty_from_labels(y)
    assert penalty[0, 12] == 0 and penalty[5, 12] == 0 and penalty[0, 5] == 1 and penalty[6, 12] == 1
    assert np.all(np.diag(penalty) == 0) and np.array_equal(penalty, penalty.T)
    assert losses.weather_penalty().sum() == 12


def test_softmax_weather_head_sums_to_one_and_keeps_label_order():
    net = model.build("simple_cnn", 32, 3, 32, [0.0] * 3, [1.0] * 3, weather_head="softmax")
    out = net.predict(np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32"), verbose=0)
    assert out.shape == (4, NUM_LABELS)
    np.testing.assert_allclose(out[:, list(WEATHER_INDICES)].sum(axis=1), 1.0, rtol=1e-5)


def test_split_is_stratified_or_by_scene():
    rng = np.random.default_rng(0)
    y = (rng.random((300, NUM_LABELS)) < 0.2).astype(np.int64)
    y[:, 1] = 0
    y[[3, 150], 1] = 1  # a label on two chips only
    ids = np.array([f"s{i // 30}/{i}".encode() for i in range(300)])
    scenes = np.array([f"s{i // 30}".encode() for i in range(300)])
    val = data.split(ids, scenes, y, 0.3, seed=1)
    assert y[val, 1].sum() == 1 and y[~val, 1].sum() == 1
    assert 0.25 < val.mean() < 0.35
    by_scene = data.split(ids, scenes, y, 0.3, seed=1, by="scene")
    assert not set(scenes[by_scene]) & set(scenes[~by_scene])
    assert by_scene.sum() == 90, "three scenes of 30 make the 30 %: no fourth"
    for fraction in (0.05, 0.95):  # a label on two chips: one on each side, however small or large the fraction
        val = data.split(ids, scenes, y, fraction, seed=1)
        assert y[val, 1].sum() == 1 and y[~val, 1].sum() == 1


def test_simple_cnn_learns_and_generalises_to_unseen_scenes(simple_bundle, tmp_path):
    """Trained on one mosaic, scored on another it never saw, with the bundle's own thresholds."""
    meta = simple_bundle["meta"]
    assert meta.arch == "simple_cnn" and meta.input_size == 64 and meta.bands == ("red", "green", "blue")
    assert meta.metrics["searched"] >= max(meta.metrics["at_0.5"], meta.metrics["at_0.2"])
    summaries = [synthetic.write_scene(s, tmp_path / "scenes") for s in synthetic.mosaic(99, 3, 3, 1024)]
    synthetic.merge_truth(summaries, tmp_path / "truth.geojson")
    chip.run([*RUNNER, "--scenes", str(tmp_path / "scenes" / "*.tif"), "--labels", str(tmp_path / "truth.geojson"),
              "--output", str(tmp_path / "chips")])
    files = data.list_files(str(tmp_path / "chips"))
    info = data.peek(files)
    ds = data.dataset(files, info, meta.bands, None, 64, training=False)
    net = bundle.load_model(simple_bundle["path"])
    probs = net.predict(ds, verbose=0)
    y = np.concatenate([labels for _, labels in ds.as_numpy_iterator()])
    cut = np.array([meta.thresholds[n] for n in meta.labels])
    score = metrics.mean_f2(y, thresholds.apply(probs, cut))
    print(f"held-out synthetic F2: {score:.4f} on {len(y)} chips")
    assert score >= 0.87


def test_bundle_files_and_validation(simple_bundle, tmp_path):
    path = simple_bundle["path"]
    meta = bundle.read_metadata(path)
    import os

    assert {meta.model_file, "bundle.json", *(f"{name}-{meta.version}.png" for name in (
        "training_curves", "f2_vs_threshold", "cooccurrence"))} == set(os.listdir(path))
    assert set(bundle.figures(path, meta)) == set(bundle.FIGURES)
    curves = bundle.figures(path, meta, ("training_curves.png",))
    assert list(curves) == ["training_curves.png"] and curves["training_curves.png"].startswith(b"\x89PNG")
    assert meta.model_file == f"model-{meta.version}.keras"
    assert len(meta.version) == 16 and meta.format_version == bundle.FORMAT_VERSION == 2
    assert len(meta.training["history"]) == demo.EPOCHS
    assert set(meta.metrics["per_label"]) == set(meta.labels)
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    doc = json.loads((broken / "bundle.json").read_text())
    doc["thresholds"].pop("road")
    doc["thresholds"]["water"] = 1.5
    doc["bands"] = ["red", "swir"]
    (broken / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(bundle.BundleError) as error:
        bundle.read_metadata(str(broken))
    message = str(error.value)
    assert "thresholds missing for ['road']" in message and "'water'" in message and "swir" in message
    with pytest.raises(bundle.BundleError, match="not a bundle"):
        bundle.read_metadata(str(tmp_path))


@pytest.mark.parametrize("change, message", [
    ({"product": "photograph"}, "domain.product 'photograph' not in"),
    ({"gsd_m": 0}, "domain.gsd_m 0 must be positive"),
    ({"gsd_m": "3 m"}, "domain.gsd_m '3 m' must be positive"),
    ({"band_ranges": {"red": [10, 1], "green": [0, 1], "blue": [0, 1]}}, "needs [low, high] for each band"),
    ({"band_ranges": {"red": [0, 1]}}, "needs [low, high] for each band"),
])
def test_a_bundle_whose_domain_means_nothing_is_refused(simple_bundle, tmp_path, change, message):
    """The domain decides whether a scan may apply the bundle to a scene: a product, ground pixel or value
    range that means nothing is refused when the bundle is read, naming what is wrong."""
    broken = tmp_path / "broken"
    shutil.copytree(simple_bundle["path"], broken)
    doc = json.loads((broken / "bundle.json").read_text())
    doc["domain"] = {**doc["domain"], **change}
    (broken / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(bundle.BundleError) as error:
        bundle.read_metadata(str(broken))
    assert message in str(error.value) and str(broken) in str(error.value)


def test_a_format_1_bundle_loads_through_the_upgrader_with_a_warning(simple_bundle, tmp_path, caplog):
    """Bundles written before ``domain`` existed still scan: bands and dtype are kept, the rest is unknown."""
    old = tmp_path / "old"
    shutil.copytree(simple_bundle["path"], old)
    doc = json.loads((old / "bundle.json").read_text())
    doc["format_version"] = 1
    doc["resolution_m"] = doc["domain"]["gsd_m"]
    del doc["domain"]
    (old / "bundle.json").write_text(json.dumps(doc))
    with caplog.at_level("WARNING", logger="planet_model.bundle"):
        meta = bundle.read_metadata(str(old))
    assert "records no domain" in caplog.text
    assert meta.format_version == bundle.FORMAT_VERSION
    assert meta.domain.gsd_m == doc["resolution_m"] and meta.domain.product == imagery.UNKNOWN
    assert meta.domain.bands == tuple(doc["bands"]) and meta.domain.band_ranges == {}
    doc["format_version"] = bundle.FORMAT_VERSION + 1
    (old / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(bundle.BundleError, match=f"format_version {bundle.FORMAT_VERSION + 1}, this code reads up to"):
        bundle.read_metadata(str(old))


def test_inception_v3_two_short_stages_export_a_bundle_that_loads_and_predicts(scenes, tmp_path):
    chips = tmp_path / "chips"
    chip.run([*RUNNER, "--scenes", str(scenes["folder"] / "*_r0c0.tif"), "--labels", str(scenes["truth"]),
              "--output", str(chips)])
    out = tmp_path / "bundle"
    meta = train.run(["--data", str(chips), "--output", str(out), "--arch", "inception_v3", "--weights", "none",
                      "--head_epochs", "1", "--finetune_epochs", "1", "--batch_size", "8", "--verbose", "0",
                      "--weather_head", "softmax"])
    assert meta.input_size == 140 and [h["stage"] for h in meta.training["history"]] == [1, 2]
    net = bundle.load_model(str(out))
    base = model.base_model(net)
    assert len(base.layers) == 311  # Inception V3 without top, counting its input layer
    model.set_trainable_from(net, 172)
    assert all(layer.trainable == (i >= 172) for i, layer in enumerate(base.layers))
    model.set_trainable_from(net, None)
    assert not base.trainable and not any(w.trainable for w in base.weights)
    probs = net.predict(np.full((2, 256, 256, 3), 500, np.float32), verbose=0)
    assert probs.shape == (2, NUM_LABELS) and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow  # builds two Inception V3 models (6 s): not for `make check`
def test_four_band_weights_from_a_local_file_extend_the_first_convolution(tmp_path):
    rgb = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(140, 140, 3))
    path = str(tmp_path / "notop.weights.h5")
    rgb.save_weights(path)
    base = model.application_base("inception_v3", 140, 4, path)
    kernel = base.layers[1].get_weights()[0]
    source = rgb.layers[1].get_weights()[0]
    assert kernel.shape[2] == 4
    np.testing.assert_allclose(kernel[:, :, :3], source)
    np.testing.assert_allclose(kernel[:, :, 3], source.mean(axis=2), rtol=1e-6)
    last = max(i for i, layer in enumerate(rgb.layers) if layer.get_weights())
    np.testing.assert_allclose(base.layers[last].get_weights()[0], rgb.layers[last].get_weights()[0])


def test_imagenet_without_internet_says_to_pass_a_local_file():
    with pytest.raises(RuntimeError, match="pass a local weights file"):
        model.application_base("inception_v3", 140, 3, "imagenet")


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch, self.started = at_epoch, []

    def on_epoch_begin(self, epoch, logs=None):
        self.started.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.at_epoch is not None and self.started[-1] == self.at_epoch and batch == 1:
            raise RuntimeError("simulated preemption")


def test_resume_continues_after_an_interrupted_epoch(chips, tmp_path):
    args = ["--data", str(chips["folder"]), "--output", str(tmp_path / "b"), "--arch", "simple_cnn",
            "--head_epochs", "4", "--batch_size", "32", "--verbose", "0"]
    first = _Interrupt(at_epoch=2)
    with pytest.raises(RuntimeError, match="preemption"):
        train.run(args, callbacks=[first])
    assert first.started == [0, 1, 2]
    with pytest.raises(UserError, match=r"^--resume: .* holds a run started with other options \(--arch 'simple_cnn' "
                                        r"then, 'small_resnet' now\): resume with the same options"):
        train.run([*args, "--resume", "--arch", "small_resnet"])  # Keras failed on the other model's checkpoint
    second = _Interrupt(at_epoch=None)
    meta = train.run([*args, "--resume", "--cache", "none"], callbacks=[second])  # how it reads may change
    assert second.started == [2, 3]  # continues with the interrupted epoch, does not restart
    assert [int(h["epoch"]) for h in meta.training["history"]] == [0, 1, 2, 3]


def test_nir_scene_split_and_the_label_penalty_change_what_training_does(chips, tmp_path):
    """One epoch each on the session's chips (12 scenes x 16 chips, blue-green-red-NIR): ``--split_by scene``
    keeps whole scenes apart, ``--bands ...,nir`` feeds 4 channels, and ``--cooccurrence_penalty labels``
    penalises every pair never seen together (many more than the weather pairs), so its loss is larger."""
    base = ["--data", str(chips["folder"]), "--arch", "simple_cnn", "--head_epochs", "1", "--batch_size", "32",
            "--verbose", "0", "--bands", "red,green,blue,nir", "--split_by", "scene", "--cooccurrence_weight", "0.1"]
    labels = train.run([*base, "--output", str(tmp_path / "labels"), "--cooccurrence_penalty", "labels"])
    weather = train.run([*base, "--output", str(tmp_path / "weather")])
    assert labels.bands == ("red", "green", "blue", "nir") and labels.domain.band_ranges["nir"]
    assert bundle.load_model(str(tmp_path / "labels")).input_shape[-1] == 4
    # 30 % of 192 chips: whole scenes of 16 make 64; a stratified split of chips (the split a training run
    # makes, read here without training on it) takes about 58.
    assert labels.metrics["validation_chips"] == weather.metrics["validation_chips"] == 64
    from planet_model import training

    by_chip = training.read_chips([str(chips["folder"])], 0.3, 0, "chip")
    assert by_chip.val_mask.sum() % 16 != 0 and by_chip.val_mask.sum() == pytest.approx(0.3 * 192, abs=8)
    first = lambda meta: meta.training["history"][0]["loss"]  # noqa: E731
    assert first(labels) > first(weather)


def test_cooccurrence_loss_keeps_its_name_weight_and_penalty_through_its_config():
    penalty = losses.penalty_from_labels(np.eye(17, dtype=np.float32)[:3])
    loss = losses.CooccurrenceLoss(0.5, penalty)
    assert loss.name == "bce_cooccurrence"
    again = losses.CooccurrenceLoss.from_config(loss.get_config())
    assert again.name == "bce_cooccurrence" and again.weight == 0.5
    np.testing.assert_array_equal(again.penalty, penalty)
    assert losses.CooccurrenceLoss().penalty.tolist() == losses.weather_penalty().tolist()


def test_label_smoothing_is_the_cross_entropy_of_smoothed_targets():
    y = np.array([[1, 0, 1] + [0] * 14], np.float32)
    p = np.full((1, 17), 0.2, np.float32)
    p[0, 0] = 0.9
    smoothed = y * 0.8 + 0.5 * 0.2  # label smoothing 0.2, worked out here
    expected = -np.mean(smoothed * np.log(p) + (1 - smoothed) * np.log(1 - p))
    loss = losses.CooccurrenceLoss(0.0, label_smoothing=0.2)
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-4)
    assert losses.CooccurrenceLoss.from_config(loss.get_config()).label_smoothing == 0.2
    assert float(losses.CooccurrenceLoss(0.0)(y, p)) < float(loss(y, p))  # confident targets cost less unsmoothed


def test_a_recipe_replaces_the_defaults_and_a_flag_given_beside_it_wins():
    args = train.parse(["--data", "d", "--output", "o", "--recipe", "kaggle-32", "--head_epochs", "3"])
    assert (args.arch, args.weights, args.input_size, args.lr_schedule, args.val_fraction) == (
        "small_resnet", "none", 32, "cosine", 0.15)
    assert args.head_epochs == 3
    plain = train.parse(["--data", "d", "--output", "o"])
    assert (plain.recipe, plain.arch, plain.head_epochs, plain.val_fraction) == (None, "inception_v3", 20, 0.3)
    for name, options in RECIPES.items():  # set_defaults takes any name: a misspelt option would do nothing
        assert set(options) <= set(vars(plain)), name


def test_the_small_resnet_counts_the_multiply_adds_its_docstring_gives():
    """Multiply-adds of every convolution and dense layer of a 32-px model, from the built layers' shapes."""
    net = model.build("small_resnet", 32, 3, 32, [0.0] * 3, [1.0] * 3)
    macs = 0
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, filters = layer.output.shape[1:]
            macs += h * w * filters * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    assert 63e6 < macs < 65e6
    assert net.output_shape == (None, 17) and net.input_shape == (None, 32, 32, 3)


def test_the_kaggle_32_recipe_trains_its_small_resnet_on_85_percent_of_the_chips(chips, tmp_path):
    """One epoch of the recipe on the session's chips (a flag beside it wins): the options it names reach
    training and the bundle."""
    meta = train.run(["--data", str(chips["folder"]), "--output", str(tmp_path / "recipe"), "--recipe", "kaggle-32",
                      "--head_epochs", "1", "--verbose", "0"])
    assert (meta.arch, meta.input_size, len(meta.training["history"])) == ("small_resnet", 32, 1)
    options = meta.training["options"]
    assert (options["recipe"], options["lr_schedule"], options["weights"]) == ("kaggle-32", "cosine", "none")
    assert meta.metrics["validation_chips"] == pytest.approx(0.15 * 192, abs=4)
    assert meta.training["history"][0]["learning_rate"] < 1e-3  # one epoch of a cosine over one epoch: down to 0
    net = bundle.load_model(str(tmp_path / "recipe"))
    assert [layer.name for layer in net.layers if layer.name.endswith("_add")] == [
        "stage1_add", "stage2_add", "stage3_add", "stage4_add"]


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_learning_rate_schedules_change_the_rate_during_training(chips, tmp_path, schedule):
    meta = train.run(["--data", str(chips["folder"]), "--output", str(tmp_path / schedule), "--arch", "simple_cnn",
                      "--head_epochs", "5" if schedule == "plateau" else "3", "--batch_size", "32", "--verbose", "0",
                      "--lr_schedule", schedule, "--head_learning_rate", "0.001" if schedule == "cosine" else "1e-9"])
    rates = [h["learning_rate"] for h in meta.training["history"]]
    if schedule == "cosine":  # a half cosine over the stage's steps: strictly down, towards 0
        assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 0.001 / 2
    else:
        # At 1e-9 the validation loss moves by about 1e-6 an epoch (measured: 1e-4 at 1e-7), never Keras's
        # min_delta (1e-4): epoch 0 sets the best, epochs 1 to 3 do not beat it, so the rate is halved after
        # epoch 3 and epoch 4 runs at half.
        assert rates[:4] == pytest.approx([1e-9] * 4, rel=1e-6) and rates[4] == pytest.approx(5e-10, rel=1e-6)
    assert meta.training["options"]["lr_schedule"] == schedule


def test_auto_cache_keeps_chips_in_memory_only_when_they_fit(monkeypatch):
    """``--cache auto`` (the default): memory when the parsed chips (float32, the bands trained on) take
    under a quarter of the free memory; a file path and none are taken as given."""
    from planet_model import training

    index = data.ChipIndex(keys=np.array([b"s|%d" % i for i in range(100)]), scene_ids=np.array([b"s"] * 100),
                           labels=np.zeros((100, NUM_LABELS), np.int64), gsd_m=np.zeros(100, np.float32),
                           products=np.array([b"analytic"] * 100))
    chips = training.Chips(files=[], info=data.DataInfo("uint16", (256, 256, 4), ("blue", "green", "red", "nir")),
                           index=index, val_mask=np.zeros(100, bool), gsd_m=3.0, product="analytic")
    needed = 100 * 256 * 256 * 3 * 4  # three of the four bands
    monkeypatch.setattr(training, "_free_memory", lambda: 4 * needed + 4)
    assert training.cache_for(chips, ("red", "green", "blue"), "auto") == "memory"
    monkeypatch.setattr(training, "_free_memory", lambda: 4 * needed)
    assert training.cache_for(chips, ("red", "green", "blue"), "auto") is None
    assert training.cache_for(chips, ("red", "green", "blue", "nir"), "auto") is None
    assert training.cache_for(chips, ("red",), "auto") == "memory"
    assert training.cache_for(chips, ("red",), "none") is None
    assert training.cache_for(chips, ("red",), "/tmp/c") == "/tmp/c"
    assert training._free_memory() > 0  # this machine's /proc/meminfo


def test_the_area_resize_by_a_whole_factor_is_average_pooling_and_equals_keras_area():
    """256 to 64 px: the model's resize is the mean of each 4 x 4 block (XLA compiles it), the same as
    Keras's area resize to float rounding; 256 to 140 keeps Keras's area resize."""
    x = np.random.default_rng(0).uniform(0, 4000, (2, 256, 256, 3)).astype(np.float32)
    blocks = x.reshape(2, 64, 4, 64, 4, 3).mean(axis=(2, 4))
    inputs = keras.Input((256, 256, 3))
    pooled = keras.Model(inputs, model.preprocessing(inputs, 64, [0.0] * 3, [1.0] * 3))
    assert isinstance(pooled.get_layer("resize"), keras.layers.AveragePooling2D)
    np.testing.assert_allclose(pooled.predict(x, verbose=0), blocks, rtol=1e-6, atol=1e-3)
    area = keras.layers.Resizing(64, 64, interpolation="area")(x)
    np.testing.assert_allclose(np.asarray(area), blocks, rtol=1e-6, atol=1e-3)
    odd = keras.Model(inputs, model.preprocessing(inputs, 140, [0.0] * 3, [1.0] * 3))
    assert isinstance(odd.get_layer("resize"), keras.layers.Resizing)


def test_jit_compile_with_a_resize_xla_cannot_do_is_refused_before_training(chips, tmp_path, capsys):
    stderr = refused(capsys, "train", "--data", str(chips["folder"]), "--output", str(tmp_path / "b"), "--arch",
                     "inception_v3", "--weights", "none", "--jit_compile")
    assert "--jit_compile: XLA cannot resize 256-px chips to 140 px" in stderr
    assert not (tmp_path / "b").exists()


def test_a_file_named_as_the_bundle_folder_is_refused_before_training(chips, tmp_path, capsys):
    """Found at the end of training before (the export's errno, after every epoch); now before the first."""
    taken = tmp_path / "bundle"
    taken.write_text("notes")
    stderr = refused(capsys, "train", "--data", str(chips["folder"]), "--output", str(taken), "--arch", "simple_cnn")
    assert f"{taken}: a file, not a folder" in stderr and taken.read_text() == "notes"
    assert not (tmp_path / "bundle.work").exists(), "no training started"


@pytest.mark.parametrize("args, message", [
    (["--batch_size", "0"], "--batch_size 0: must be at least 1"),  # TensorFlow's traceback after reading the chips
    (["--max_stat_chips", "0"], "--max_stat_chips 0: must be at least 1"),  # numpy's, likewise
    (["--input_size", "0"], "--input_size 0: must be at least 1"),  # taken as the default
    (["--head_epochs", "-1"], "--head_epochs -1: must be at least 0"),
    (["--finetune_epochs", "-2"], "--finetune_epochs -2: must be at least 0"),
    (["--finetune_from_layer", "-5"], "--finetune_from_layer -5: must be at least 0"),  # unfroze the whole base
    (["--l2", "-0.01"], "--l2 -0.01: must be at least 0"),
    (["--cooccurrence_weight", "-0.0001"], "--cooccurrence_weight -0.0001: must be at least 0"),
    (["--head_learning_rate", "0"], "--head_learning_rate 0.0: must be above 0"),
    (["--finetune_learning_rate", "-0.01"], "--finetune_learning_rate -0.01: must be above 0"),  # climbed the loss
    (["--momentum", "1"], "--momentum 1.0: must be at least 0 and under 1"),
    (["--momentum", "-0.1"], "--momentum -0.1: must be at least 0 and under 1"),
    (["--label_smoothing", "1.5"], "--label_smoothing 1.5: must be at least 0 and under 1"),
    (["--val_fraction", "0"], "--val_fraction 0.0: must be above 0 and under 1"),  # thresholds from next to nothing
    (["--val_fraction", "1"], "--val_fraction 1.0: must be above 0 and under 1"),
    (["--head_epochs", "0", "--finetune_epochs", "0"], "--head_epochs 0 and --finetune_epochs 0: no epoch to train"),
    (["--arch", "simple_cnn", "--head_epochs", "0"], "--head_epochs 0: no epoch to train"),  # finetune: no stage 2
    (["--bands", "red,green,purple"], "--bands red,green,purple: purple not a band of chips"),
    (["--cache", "/nowhere/at/all/cache"], "--cache /nowhere/at/all/cache: its folder /nowhere/at/all does not exist"),
    # made a local folder named gs: (the checkpoints are files, written and locked here)
    (["--workdir", "gs://b/work"], "--workdir gs://b/work: must be a folder on this machine (or a mounted bucket"),
    (["--output", "gs://b/bundle"], "--output gs://b/bundle: a bucket, so its default --workdir (OUTPUT.work) is not"),
])
def test_training_options_out_of_range_are_refused_before_any_work(args, message):
    """Each was accepted and trained something other than asked (an untrained model exported, the loss
    climbed), or failed inside TensorFlow or numpy after the chips were read."""
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        train.check(train.parse(["--data", "d", "--output", "o", *args]))
    edge = {"--momentum": "0", "--label_smoothing": "0", "--val_fraction": "0.001", "--head_epochs": "1",
            "--l2": "0", "--finetune_from_layer": "0", "--batch_size": "1"}
    train.check(train.parse(["--data", "d", "--output", "o", *[x for kv in edge.items() for x in kv]]))


def test_a_finetune_layer_past_the_base_is_refused_before_training(chips, tmp_path, capsys):
    """``--finetune_from_layer`` past the base's last layer trained the head alone in stage 2."""
    args = ["train", "--data", str(chips["folder"]), "--output", str(tmp_path / "b"), "--weights", "none"]
    stderr = refused(capsys, *args, "--arch", "resnet50", "--input_size", "64", "--finetune_from_layer", "175")
    assert "--finetune_from_layer 175: the resnet50 base has layers 0 to 174" in stderr
    assert not (tmp_path / "b.work" / "history-stage1.csv").exists(), "stage 1 did not start"


def test_bands_the_chips_lack_are_a_usage_error_naming_the_flag():
    """A band of chips that these chips lack (nir of RGB chips) was a ValueError's traceback."""
    info = data.DataInfo("uint8", (256, 256, 3), ("red", "green", "blue"))
    assert data.band_indexes(info, ["blue", "red"]) == [2, 0]
    with pytest.raises(UserError, match=r"^--bands: the chips have bands \['red', 'green', 'blue'\]; \['nir'\]"):
        data.band_indexes(info, ["red", "nir"])


@pytest.mark.parametrize("held, what", [("manifest.json", "a chip set"), ("current.json", "a report"),
                                        ("catalog.db", "a scans warehouse")])
def test_a_bundle_is_not_written_among_another_outputs_files(tmp_path, held, what):
    """``--output`` naming the chip set trained on, a report or the scans (a wrong folder) wrote the model and
    bundle.json among their files; a bundle's own folder is trained into again."""
    (tmp_path / held).write_text("{}")
    with pytest.raises(UserError, match=re.escape(f"--output {tmp_path}: holds {what} ({held}); a bundle needs")):
        train.check(train.parse(["--data", "d", "--output", str(tmp_path)]))
    (tmp_path / held).unlink()
    (tmp_path / "bundle.json").write_text("{}")
    train.check(train.parse(["--data", "d", "--output", str(tmp_path)]))


@pytest.mark.parametrize("held, what", [("manifest.json", "a chip set"), ("current.json", "a report"),
                                        ("evaluations.json", "an evaluation"), ("catalog.db", "a scans warehouse")])
def test_an_ensemble_is_not_written_among_another_outputs_files(tmp_path, held, what):
    """``ensemble --output`` was not checked as ``train``'s is: naming a report or the chips, it wrote the
    ensemble's model and bundle.json among their files. Refused before any member is read."""
    from planet_model import ensemble

    out = tmp_path / "out"
    out.mkdir()
    (out / held).write_text("{}")
    with pytest.raises(UserError, match=re.escape(f"--output {out}: holds {what} ({held}); a bundle needs")):
        ensemble.run(["--bundle", str(tmp_path / "a"), "--bundle", str(tmp_path / "b"), "--data", "d",
                      "--output", str(out)])
    assert sorted(p.name for p in out.iterdir()) == [held]


@pytest.mark.parametrize("held, what", [("manifest.json", "a chip set"), ("current.json", "a report"),
                                        ("bundle.json", "a model bundle"), ("catalog.db", "a scans warehouse")])
def test_an_evaluation_is_not_written_among_another_outputs_files(tmp_path, held, what):
    """``--output`` naming a bundle, its chips, a report or the scans is refused before any bundle is read (its
    figures and manifest would have been written among their files)."""
    from planet_model import evaluate

    (tmp_path / held).write_text("{}")
    with pytest.raises(UserError, match=re.escape(f"--output {tmp_path}: holds {what} ({held}); give an evaluation")):
        evaluate.run(["--bundle", str(tmp_path / "absent"), "--data", "d", "--output", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [held]


@pytest.mark.parametrize("held, what", [("manifest.json", "a chip set"), ("evaluations.json", "an evaluation"),
                                        ("bundle.json", "a model bundle"), ("catalog.db", "a scans warehouse")])
def test_a_report_is_not_written_among_another_outputs_files(tmp_path, held, what):
    """``report --output`` naming the bundle or the scans (a wrong folder) wrote its manifest, versions and link
    among their files, after which ``train`` refused to train into that bundle's folder again ("holds a
    report"). Refused before any work; a report's own folder is written again."""
    from pipelines.analysis import report

    (tmp_path / held).write_text("{}")
    with pytest.raises(UserError, match=re.escape(f"--output {tmp_path}: holds {what} ({held}); a report needs")):
        report.run(["--scans", str(tmp_path / "absent"), "--output", str(tmp_path), "--no_images", "--no_clearings"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [held]


def test_the_files_that_say_what_a_folder_holds_are_the_ones_each_output_writes():
    """One table (``storage.OUTPUTS``) tells the outputs apart for every command; each name is its owner's."""
    from pipelines.analysis import report
    from pipelines.store import catalog
    from planet_core import storage
    from planet_model import evaluate, records, training

    assert set(storage.OUTPUTS) == {records.MANIFEST, report.CURRENT, bundle.METADATA, training.OPTIONS_FILE,
                                    catalog.EMBEDDED, evaluate.CURRENT}


def test_a_work_folder_is_held_by_one_training_and_a_bundle_can_still_be_switched_in_it(tmp_path):
    """A second claim of a work folder is refused while the first holds it, and the folder is free again once
    the first ends. ``--workdir`` may be the bundle's own folder, whose ``bundle.json`` is switched under a
    lock on the folder: held on the folder itself, the work folder's lock made that switch wait forever (the
    training hung at its end); it is held on a file of its own."""
    import threading

    from planet_core import storage
    from planet_model import training

    folder = str(tmp_path)
    with training.claimed(folder):
        with pytest.raises(UserError, match="another training is using it"), training.claimed(folder):
            pass
        switched = threading.Event()
        threading.Thread(target=lambda: (storage.swap(str(tmp_path / "bundle.json"), lambda _: b"{}"),
                                         switched.set()), daemon=True).start()
        assert switched.wait(10), "the bundle's switch waited on the training's lock"
    with training.claimed(folder):
        pass
