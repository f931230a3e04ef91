"""The model architectures this project builds and the fixed facts of each, without importing Keras
(``planet-tiles train --help`` reads them and must answer at once). :mod:`planet_model.model` builds them."""

ARCHS = ("inception_v3", "simple_cnn")
WEATHER_HEADS = ("sigmoid", "softmax")
#: The study fine-tunes Inception V3 from this layer index on (the input layer counts as layer 0).
FINETUNE_FROM = 172
#: Model input size per architecture: the study's 140 px for Inception V3 (it needs at least 139) and
#: 64 px for the simple CNN, where the study found it best.
DEFAULT_INPUT_SIZE = {"inception_v3": 140, "simple_cnn": 64}
