"""The model architectures this project builds and the fixed facts of each, without importing Keras
(``planet-tiles train --help`` reads them and must answer at once). :mod:`planet_model.model` builds them."""

#: Keras applications used as the base under the study's head (global average pooling, Dense(512)), the
#: study's own baseline CNN, and a small residual network for thumbnails (32 px, trained from scratch).
APPLICATIONS = ("inception_v3", "resnet50", "efficientnet_b0")
ARCHS = (*APPLICATIONS, "simple_cnn", "small_resnet")
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
#: the other applications, 64 px for the simple CNN, where the study found it best, and 32 px for the small
#: residual network, the size of the real thumbnails it is made for.
DEFAULT_INPUT_SIZE = {"inception_v3": 140, "resnet50": 140, "efficientnet_b0": 140, "simple_cnn": 64,
                      "small_resnet": 32}
#: ``train --recipe``: named sets of train options, each measured on real chips by a benchmark; a flag
#: given beside a recipe wins over the recipe's value. ``kaggle-32``: the competition's real chips as 32-px
#: thumbnails (``benchmarks/kaggle_real.py``; the README's model table has its figure): the small residual
#: network from scratch, 28 epochs of Adam decayed along a half cosine, 85 % of the chips trained on.
RECIPES = {
    "kaggle-32": {"arch": "small_resnet", "weights": "none", "input_size": 32, "head_epochs": 28,
                  "lr_schedule": "cosine", "val_fraction": 0.15, "batch_size": 128, "cache": "memory"},
}
