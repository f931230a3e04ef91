"""The 17 labels of the Planet Amazon data set, in the fixed order every other module relies on.

A label vector anywhere in this project (records, model outputs, thresholds, Parquet columns) is
indexed by :data:`LABELS`. ``artisinal_mine`` is spelled as in the published data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from planet_core import storage
from planet_core.errors import UserError

LABELS: tuple[str, ...] = (
    "agriculture",
    "artisinal_mine",
    "bare_ground",
    "blooming",
    "blow_down",
    "clear",
    "cloudy",
    "conventional_mine",
    "cultivation",
    "habitation",
    "haze",
    "partly_cloudy",
    "primary",
    "road",
    "selective_logging",
    "slash_burn",
    "water",
)
NUM_LABELS = len(LABELS)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

#: Every chip carries exactly one of these; a ``cloudy`` chip carries nothing else.
WEATHER_LABELS: tuple[str, ...] = ("clear", "cloudy", "haze", "partly_cloudy")
WEATHER_INDICES: tuple[int, ...] = tuple(LABEL_INDEX[n] for n in WEATHER_LABELS)
LAND_LABELS: tuple[str, ...] = tuple(n for n in LABELS if n not in WEATHER_LABELS)

#: Land-use labels that mark human disturbance of forest (what change detection alerts on).
DISTURBANCE_LABELS: tuple[str, ...] = (
    "agriculture",
    "cultivation",
    "habitation",
    "road",
    "bare_ground",
    "slash_burn",
    "selective_logging",
    "blow_down",
    "conventional_mine",
    "artisinal_mine",
)


class LabelError(UserError):
    """A tag string or label vector that does not fit the label set."""


def parse_tags(tags: str, row: str | int | None = None) -> list[str]:
    """Split a Kaggle ``tags`` string ("haze primary") into label names, in :data:`LABELS` order.

    ``row`` names the offending row (image name or line number) in the error for an unknown tag.
    """
    names = tags.split()
    for name in names:
        if name not in LABEL_INDEX:
            where = f" in row {row!r}" if row is not None else ""
            raise LabelError(f"unknown tag {name!r}{where}; known tags: {', '.join(LABELS)}")
    return sorted(set(names), key=LABEL_INDEX.__getitem__)


def encode(names: Iterable[str]) -> np.ndarray:
    """Multi-hot int64 vector of length 17 for the given label names."""
    vector = np.zeros(NUM_LABELS, dtype=np.int64)
    for name in names:
        if name not in LABEL_INDEX:
            raise LabelError(f"unknown label {name!r}; known labels: {', '.join(LABELS)}")
        vector[LABEL_INDEX[name]] = 1
    return vector


def decode(vector: Sequence[int] | np.ndarray) -> list[str]:
    """Label names whose entry in the multi-hot ``vector`` is non-zero, in :data:`LABELS` order."""
    values = np.asarray(vector)
    if values.shape != (NUM_LABELS,):
        raise LabelError(f"a label vector has {NUM_LABELS} entries, got shape {values.shape}")
    return [LABELS[i] for i in np.flatnonzero(values)]


def read_kaggle_csv(path: str | Path) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(image_name, labels)`` from a Kaggle ``image_name,tags`` CSV such as ``train_v2.csv``
    (local or ``gs://``). An image listed twice is a :class:`LabelError`: its chip would be written twice,
    under labels that may differ."""
    with io.StringIO(storage.read_text(str(path)), newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"image_name", "tags"} <= set(reader.fieldnames):
            raise LabelError(f"{path}: expected columns image_name,tags, got {reader.fieldnames}")
        seen: dict[str, int] = {}
        for line, record in enumerate(reader, start=2):
            name = record["image_name"]
            if name in seen:
                raise LabelError(f"{path}: {name} is listed on lines {seen[name]} and {line}; list each image once")
            seen[name] = line
            yield name, parse_tags(record["tags"] or "", row=f"{name} (line {line})")


def write_kaggle_csv(path: str | Path, rows: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Write ``(image_name, labels)`` rows in the Kaggle ``image_name,tags`` format."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "tags"])
        for name, labels in rows:
            writer.writerow([name, " ".join(sorted(labels, key=LABEL_INDEX.__getitem__))])
