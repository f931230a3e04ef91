"""The Kaggle "Planet: Understanding the Amazon from Space" folders: 256-px chips as published, with their labels.

Not scenes: each image is already a chip, without georeferencing, so this source gives chips to read
(:class:`KaggleChip`) rather than scene items, and only the chipping pipeline takes it. Its ground
sample distance is Planet's published figure (:data:`planet_model.kaggle.GSD_M`) and its product what
the format is: JPG = visual, TIF = analytic (:mod:`planet_model.kaggle` reads both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planet_core import storage
from planet_core.labels import read_kaggle_csv
from planet_model import kaggle


@dataclass(frozen=True)
class KaggleChip:
    """One Kaggle image to read, with its ground-truth tags."""

    name: str
    tags: tuple[str, ...]
    uri: str


class KaggleSet:
    """``--kaggle_csv`` (``train_v2.csv``: image_name,tags) and ``--kaggle_images`` (a train-jpg or
    train-tif-v2 folder); ``image_format`` is ``jpg`` or ``tif``, or ``None`` for what the folder holds."""

    def __init__(self, csv: str, images: str, image_format: str | None = None) -> None:
        self.csv, self.images = csv, images
        self.image_format = kaggle.image_format(images, image_format)
        self.product = kaggle.PRODUCTS[self.image_format]

    def discover(self) -> list[KaggleChip]:
        """Every labelled image of the CSV, in its order (an image missing from the folder fails when read)."""
        return [KaggleChip(name, tuple(tags), storage.join(self.images, f"{name}.{self.image_format}"))
                for name, tags in read_kaggle_csv(self.csv)]

    def read(self, chip: KaggleChip) -> tuple[np.ndarray, tuple[str, ...]]:
        """The chip's pixels ``(256, 256, bands)`` in record band order and its band names."""
        return kaggle.read_image(chip.uri, self.image_format)
