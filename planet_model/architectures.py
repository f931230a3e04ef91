"""The model architectures this project builds and the fixed facts of each, without importing Keras
(``planet-tiles train --help`` reads them and must answer at once). :mod:`planet_model.model` builds them."""

#: Keras applications used as the base under the study's head (global average pooling, Dense(512)), and
#: the study's own baseline CNN.
APPLICATIONS = ("inception_v3", "resnet50", "efficientnet_b0")
ARCHS = (*APPLICATIONS, "simple_cnn")
WEATHER_HEADS = ("sigmoid", "softmax")
LR_SCHEDULES = ("constant", "cosine", "plateau")
#: ``train --cache`` default: tf.data keeps the parsed chips in memory when they fit
#: (:func:`planet_model.training.cache_for`).
AUTO_CACHE = "auto"
#: Stage 2 fine-tunes the base from this layer index on (the input layer counts as layer 0): the study's
#: 172 for Inception V3 (its last two inception blocks); the first layer of the last stage for the others
#: (ResNet50's conv5_block1, EfficientNetB0's block6a).
FINETUNE_FROM = {"inception_v3": 172, "resnet50": 143, "efficientnet_b0": 162}
#: Model input size per architecture: the study's 140 px for Inception V3 (it needs at least 139) and
#: the other applications, and 64 px for the simple CNN, where the study found it best.
DEFAULT_INPUT_SIZE = {"inception_v3": 140, "resnet50": 140, "efficientnet_b0": 140, "simple_cnn": 64}
