"""Models: the study's Inception V3 (or another Keras application under the same head) and its simple-CNN
baseline, all taking chips as stored.

Every model takes a batch of chips exactly as the records and the scan hold them (``chip_size`` square,
the bundle's bands, float32 of the native values) and does its own preprocessing in its first layers:
area resize to ``input_size`` and per-band normalisation with statistics from the training split. A
bundle's model therefore cannot be fed differently at scan time than in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from planet_core.labels import NUM_LABELS, WEATHER_INDICES
from planet_model.architectures import APPLICATIONS, ARCHS


@keras.saving.register_keras_serializable(package="planet_model")
class MultiLabelHead(layers.Layer):
    """Logits -> probabilities: softmax over the 4 weather labels, sigmoid for the other 13.

    Output columns stay in label order, so thresholds and decoding do not care which head was used.
    """

    def __init__(self, weather: Sequence[int] = WEATHER_INDICES, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.weather = list(weather)
        mask = np.zeros(NUM_LABELS, dtype="float32")
        mask[self.weather] = 1.0
        self._mask = mask

    def call(self, logits):  # noqa: ANN001, ANN201
        logits = ops.cast(logits, "float32")
        masked = ops.where(self._mask > 0, logits, ops.full_like(logits, -1e9))
        softmax = ops.softmax(masked, axis=-1)
        return self._mask * softmax + (1.0 - self._mask) * ops.sigmoid(logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "weather": self.weather}


@keras.saving.register_keras_serializable(package="planet_model")
class Dihedral(layers.Layer):
    """One of the 8 symmetries of a square chip: transpose, then flip rows, then flip columns, each or not.
    A chip has no "up", so a model's answer should not change under any of them: test-time augmentation
    averages over all 8 (:func:`planet_model.ensemble.combine`)."""

    def __init__(self, transpose: bool = False, flip_rows: bool = False, flip_cols: bool = False,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.transpose, self.flip_rows, self.flip_cols = bool(transpose), bool(flip_rows), bool(flip_cols)

    def call(self, x):  # noqa: ANN001, ANN201
        if self.transpose:
            x = ops.transpose(x, (0, 2, 1, 3))
        if self.flip_rows:
            x = ops.flip(x, axis=1)
        if self.flip_cols:
            x = ops.flip(x, axis=2)
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "transpose": self.transpose, "flip_rows": self.flip_rows,
                "flip_cols": self.flip_cols}


@keras.saving.register_keras_serializable(package="planet_model")
class SelectBands(layers.Layer):
    """The channels ``indexes`` of a chip: an ensemble member that reads fewer bands than the ensemble."""

    def __init__(self, indexes: Sequence[int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.indexes = [int(i) for i in indexes]

    def call(self, x):  # noqa: ANN001, ANN201
        return ops.take(x, self.indexes, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "indexes": self.indexes}


def preprocessing(inputs, input_size: int, mean: Sequence[float], variance: Sequence[float]):  # noqa: ANN001, ANN201
    """Area resize (like OpenCV's INTER_AREA) and per-band standardisation, as model layers.

    By a whole factor (256 px chips to 64, 128 or 256) the area resize is the mean of each k x k block,
    average pooling: equal to ``Resizing(interpolation="area")`` to float rounding, a tenth faster in
    training on a CPU, and compiled by XLA, which has no area resize (``train --jit_compile`` crashed in
    its first step). Other sizes (Inception V3's 140) keep Keras's area resize."""
    chip_size = inputs.shape[1]
    if chip_size % input_size == 0:
        x = layers.AveragePooling2D(chip_size // input_size, name="resize")(inputs)
    else:
        x = layers.Resizing(input_size, input_size, interpolation="area", name="resize")(inputs)
    return layers.Normalization(mean=list(mean), variance=list(variance), name="normalize")(x)


def output_layer(x, weather_head: str, l2: float | None = None):  # noqa: ANN001, ANN201
    regularizer = keras.regularizers.L2(l2) if l2 else None
    if weather_head == "softmax":
        logits = layers.Dense(NUM_LABELS, kernel_regularizer=regularizer, name="logits")(x)
        return MultiLabelHead(name="labels", dtype="float32")(logits)
    return layers.Dense(NUM_LABELS, activation="sigmoid", kernel_regularizer=regularizer, name="labels",
                        dtype="float32")(x)


def _application(arch: str):  # noqa: ANN202 - a keras.applications constructor
    return {"inception_v3": keras.applications.InceptionV3, "resnet50": keras.applications.ResNet50,
            "efficientnet_b0": keras.applications.EfficientNetB0}[arch]


#: The notop weights file Keras downloads for each application (what to pass as --weights offline).
WEIGHTS_FILES = {"inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 "efficientnet_b0": "efficientnetb0_notop.h5"}


def application_base(arch: str, input_size: int, bands: int, weights: str | None) -> keras.Model:
    """A Keras application without top. ``weights``: ``imagenet``, a local weights file, or ``None``.

    With 4 bands and pre-trained weights (Inception V3 only: the others normalise RGB inside their own
    first layers), the first convolution gets a NIR kernel initialised from the mean of the RGB kernels;
    every other weight is the pre-trained one.
    """
    build = _application(arch)
    shape = (input_size, input_size, bands)
    if weights and bands != 3 and arch != "inception_v3":
        raise ValueError(f"--arch {arch} with --weights and {bands} bands: pre-trained weights with other than "
                         "3 bands are supported for inception_v3 only; use --bands red,green,blue or --weights none")
    if weights == "imagenet":
        try:
            rgb = build(include_top=False, weights="imagenet", input_shape=(input_size, input_size, 3))
        except Exception as error:
            raise RuntimeError(
                f"could not download the ImageNet weights for {arch} ({type(error).__name__}: {error}); "
                f"without internet, pass a local weights file: --weights /path/to/{WEIGHTS_FILES[arch]}"
            ) from error
        if bands == 3:
            return rgb
        base = build(include_top=False, weights=None, input_shape=shape)
        _copy_extending_first_conv(rgb, base)
        return base
    base = build(include_top=False, weights=None, input_shape=shape)
    if weights:
        if bands == 3:
            base.load_weights(weights)
        else:
            rgb = build(include_top=False, weights=None, input_shape=(input_size, input_size, 3))
            rgb.load_weights(weights)
            _copy_extending_first_conv(rgb, base)
    return base


def _copy_extending_first_conv(rgb: keras.Model, base: keras.Model) -> None:
    first = True
    for source, target in zip(rgb.layers, base.layers):
        values = source.get_weights()
        if first and isinstance(source, layers.Conv2D):
            kernel = values[0]  # (kh, kw, 3, filters)
            extra = np.repeat(kernel.mean(axis=2, keepdims=True), target.get_weights()[0].shape[2] - 3, axis=2)
            values = [np.concatenate([kernel, extra], axis=2)] + values[1:]
            first = False
        target.set_weights(values)


def build(arch: str, chip_size: int, bands: int, input_size: int, mean: Sequence[float],
          variance: Sequence[float], weights: str | None = None, weather_head: str = "sigmoid",
          l2: float = 0.01) -> keras.Model:
    """A model from raw chips ``(chip_size, chip_size, bands)`` float32 to 17 probabilities."""
    inputs = keras.Input((chip_size, chip_size, bands), name="chip")
    x = preprocessing(inputs, input_size, mean, variance)
    if arch in APPLICATIONS:
        base = application_base(arch, input_size, bands, weights)
        x = base(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dense(512, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name="dense")(x)
        outputs = output_layer(x, weather_head)
    elif arch == "simple_cnn":
        for block in range(2):
            x = layers.Conv2D(32, 3, padding="same", activation="relu", name=f"conv{2 * block + 1}")(x)
            x = layers.Conv2D(32, 3, padding="same", activation="relu", name=f"conv{2 * block + 2}")(x)
            x = layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
            x = layers.Dropout(0.25, name=f"dropout{block + 1}")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(256, activation="relu", name="dense1")(x)
        x = layers.Dropout(0.5, name="dropout3")(x)
        x = layers.Dense(256, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01), name="dense2")(x)
        x = layers.Dropout(0.5, name="dropout4")(x)
        outputs = output_layer(x, weather_head, l2=0.01)
    elif arch == "small_resnet":
        x = _small_resnet(x, l2)
        outputs = output_layer(x, weather_head, l2=l2)
    else:
        raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
    return keras.Model(inputs, outputs, name=arch)


def _small_resnet(x, l2: float):  # noqa: ANN001, ANN202
    """A residual network for 32-px chips (He et al., 2016, at the width of their CIFAR models): a 3x3 stem,
    one residual block per stage at 32, 64, 128 and 256 filters (each later stage halves the grid, down to
    4 x 4), global average pooling. About 64 million multiply-adds a 32-px chip, four times the simple
    CNN's at that size; Inception V3 needs 140 px and 19 times as many. The fourth stage costs a fifth more
    time than three stages and gained 0.005 mean F2 on the real thumbnails: what stages at 4 x 4 and 8 x 8
    add costs little beside the 32 x 32 stage. Batch normalisation lets it train from scratch in a few dozen
    epochs; the L2 factor is the head's, scaled down for the convolutions. No dropout: on the real
    thumbnails it underfits (training loss above validation loss after 25 epochs)."""
    conv_l2 = keras.regularizers.L2(l2 / 20) if l2 else None

    def conv_bn(y, filters: int, stride: int, name: str, relu: bool = True):  # noqa: ANN001, ANN202
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, kernel_regularizer=conv_l2,
                          name=f"{name}_conv")(y)
        y = layers.BatchNormalization(name=f"{name}_bn")(y)
        return layers.Activation("relu", name=f"{name}_relu")(y) if relu else y

    x = conv_bn(x, 32, 1, "stem")
    for stage, filters in enumerate((32, 64, 128, 256), start=1):
        stride = 1 if stage == 1 else 2
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_regularizer=conv_l2,
                                     name=f"stage{stage}_shortcut")(x)
            shortcut = layers.BatchNormalization(name=f"stage{stage}_shortcut_bn")(shortcut)
        y = conv_bn(x, filters, stride, f"stage{stage}_a")
        y = conv_bn(y, filters, 1, f"stage{stage}_b", relu=False)
        x = layers.Activation("relu", name=f"stage{stage}_out")(layers.Add(name=f"stage{stage}_add")([shortcut, y]))
    return layers.GlobalAveragePooling2D(name="pool")(x)


def base_model(model: keras.Model) -> keras.Model | None:
    """The Keras application sub-model of a built model, or ``None`` for the CNNs built here (simple_cnn,
    small_resnet)."""
    return next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)


def set_trainable_from(model: keras.Model, first: int | None) -> None:
    """Freeze the base entirely (``first=None``) or from its layer ``first`` on make it trainable.

    Frozen BatchNormalization layers run in inference mode, as Keras does for frozen layers.
    """
    base = base_model(model)
    if base is None:
        return
    base.trainable = first is not None
    if first is not None:
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= first
