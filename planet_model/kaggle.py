"""The Kaggle data set "Planet: Understanding the Amazon from Space" as it is published: its image files and
its submission format. Chipping reads its training images with :func:`read_image`; ``planet-tiles predict``
reads its test images the same way and writes :func:`write_submission`'s CSV.

The images carry no georeferencing: ``train_N.jpg`` / ``test_N.jpg`` are RGB (Planet's visual product)
and ``train_N.tif`` are blue, green, red, NIR uint16 (the analytic product). This module imports no
TensorFlow and no Beam.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from rasterio.io import MemoryFile

from planet_core import storage
from planet_core.errors import UserError
from planet_core.imagery import ANALYTIC, RGB, RGBN, VISUAL
from planet_core.labels import LABELS

FORMATS = ("jpg", "tif")
#: The band order of the TIF images.
TIF_BAND_ORDER = ("blue", "green", "red", "nir")
#: The chips' pixel size: "orthorectified pixel size 3 m" (Planet's description of the data set,
#: planetlabs/planet-amazon-deforestation, README "Chip Data Format"; ground sample distance about 3.7 m).
GSD_M = 3.0
#: The published chips' side: a chip always covers 768 m, so a downsampled copy has larger pixels.
CHIP_PIXELS = 256


def gsd_of(pixels: int) -> float:
    """The ground pixel of a Kaggle chip ``pixels`` a side: 3 m at 256 px, 24 m for a 32-px thumbnail."""
    return GSD_M * CHIP_PIXELS / pixels


#: JPG: Planet's visual product (colour-corrected 8-bit); TIF: the analytic product (12-bit DNs in uint16).
PRODUCTS = {"jpg": VISUAL, "tif": ANALYTIC}
#: The competition's submission header: one row per test image, tags space-separated.
SUBMISSION_HEADER = ("image_name", "tags")


def image_format(folder: str, given: str | None, flag: str = "--kaggle_images") -> str:
    """``jpg`` or ``tif``: ``given``, else the only kind of image ``folder`` holds."""
    if given:
        return given
    found = [kind for kind in FORMATS if storage.glob(storage.join(folder, f"*.{kind}"))]
    if len(found) == 1:
        return found[0]
    if found:
        raise UserError(f"{flag} {folder} holds both .jpg and .tif images: pass --kaggle_format jpg or tif")
    raise UserError(f"{flag} {folder}: no .jpg or .tif images there")


def read_image(uri: str, kind: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """An image file -> ``(height, width, bands)`` pixels in record band order, and the band names.
    ``FileNotFoundError`` when it is missing, ``ValueError`` when it cannot be decoded."""
    data = storage.read_bytes(uri)
    if kind == "jpg":
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("not a decodable JPEG")
        return np.ascontiguousarray(decoded[:, :, ::-1]), RGB  # OpenCV decodes to BGR

    with MemoryFile(data) as memory, memory.open() as src:
        if src.count != 4:
            raise ValueError(f"expected 4 bands (blue, green, red, nir), found {src.count}")
        pixels = src.read()
    order = [TIF_BAND_ORDER.index(b) for b in RGBN]
    return np.ascontiguousarray(pixels[order].transpose(1, 2, 0)), RGBN


def image_names(folder: str, kind: str) -> list[str]:
    """The image names (file names without extension) of ``folder``, sorted."""
    return sorted(posixpath.basename(p)[: -len(kind) - 1] for p in storage.glob(storage.join(folder, f"*.{kind}")))


def write_submission(path: str, rows: Iterable[tuple[str, Sequence[str]]]) -> int:
    """Write ``image_name,tags`` rows (tags in label order, space-separated); return how many."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUBMISSION_HEADER)
    count = 0
    for name, tags in rows:
        unknown = [t for t in tags if t not in LABELS]
        if unknown:
            raise ValueError(f"{name}: unknown tags {unknown}")
        writer.writerow((name, " ".join(sorted(tags, key=LABELS.index))))
        count += 1
    storage.write_text(path, out.getvalue())
    return count
