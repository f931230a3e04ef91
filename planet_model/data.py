"""Input pipeline: chip TFRecords -> shuffled, augmented, batched ``tf.data`` datasets, and the facts of a
chip set that the bundle keeps (layout, ground sample distance, product, value ranges).

Chips reach the model as stored (full chip size, float32 of the native values, the chosen bands in
record order); resizing and normalisation happen inside the model (:mod:`planet_model.model`).
Files are listed through :mod:`planet_core.storage`; ``tf.data`` reads them with its own IO (local or
``gs://``), which streams records far faster than a Python file object could.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from planet_core import publishing, storage
from planet_core.errors import UserError
from planet_core.labels import NUM_LABELS
from planet_model import records


@dataclass(frozen=True)
class DataInfo:
    """What every record of a chip set shares (checked on the first record of every file)."""

    dtype: str
    shape: tuple[int, int, int]
    bands: tuple[str, ...]


@dataclass(frozen=True)
class ChipIndex:
    """Every chip of a set, in file order: what splitting and the bundle's domain need."""

    keys: np.ndarray  # scene_id|tile_id (bytes)
    scene_ids: np.ndarray
    labels: np.ndarray  # (n, 17) int64
    gsd_m: np.ndarray  # float32, 0 where unknown
    products: np.ndarray  # bytes


def list_files(locations: str | Sequence[str]) -> list[str]:
    """TFRecord files of one or several locations, each a chip set folder (the files its manifest lists,
    never a listing of the folder), a glob, or one file."""
    if not isinstance(locations, str):
        return [path for location in locations for path in list_files(location)]
    location = locations
    if any(ch in location for ch in "*?["):
        files = storage.glob(location)
    elif storage.exists(storage.join(location, records.MANIFEST)):
        manifest = publishing.read(location, records.MANIFEST) or {}
        files = [path for path in publishing.paths(location, manifest.get("files", []))
                 if ".tfrecord" in path.rsplit("/", 1)[-1]]
        if not files:
            raise FileNotFoundError(f"{location}: its {records.MANIFEST} lists no chip files")
    elif storage.exists(location) and not os.path.isdir(location):
        files = [location]
    elif storage.exists(location):
        raise FileNotFoundError(f"{location}: no {records.MANIFEST} there, so not a chip set `planet-tiles chip` "
                                "wrote; give the chip files themselves (a glob) to read them anyway")
    else:
        files = []
    if not files:
        raise FileNotFoundError(f"no chip records at {location!r}")
    return files


def _compression(files: Sequence[str]) -> str:
    return "GZIP" if files[0].endswith(".gz") else ""


def raw_dataset(files: Sequence[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(list(files), compression_type=_compression(files),
                                   num_parallel_reads=tf.data.AUTOTUNE)


def peek(files: Sequence[str]) -> DataInfo:
    """The layout every chip file shares, from the first record of each; files that differ (3 and 4
    bands, uint8 and uint16, other sizes) or hold unlabelled chips are named in a ``ValueError`` before any
    training (TensorFlow would fail on them mid-epoch with a parse error that names no file)."""
    layouts: dict[tuple, list[str]] = {}
    for path in files:
        first = next(iter(raw_dataset([path]).take(1)), None)
        if first is None:
            continue
        chip = records.decode(first.numpy())
        if chip.labels is None:
            raise ValueError(f"{path} holds chips without labels (chipped without --labels); training and "
                             "evaluation need labelled chips")
        layouts.setdefault((str(chip.image.dtype), chip.image.shape, chip.bands), []).append(path)
    if not layouts:
        raise ValueError("the chip records are empty")
    if len(layouts) > 1:
        described = "; ".join(f"{dtype} {'x'.join(map(str, shape))} {','.join(bands)}: {', '.join(paths[:3])}"
                              + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
                              for (dtype, shape, bands), paths in sorted(layouts.items(), key=lambda kv: -len(kv[1])))
        raise ValueError(f"the chip files differ in layout (dtype, size, bands); train on one kind: {described}")
    (dtype, shape, bands), = layouts
    return DataInfo(dtype, shape, bands)


def chip_key(record: dict) -> tf.Tensor:
    """``scene_id|tile_id``: what identifies a chip. A fixed grid (WebMercatorQuad) gives the same
    tile id to every acquisition of a place, so the tile id alone does not."""
    return tf.strings.join([record["scene_id"], record["tile_id"]], separator="|")


def index(files: Sequence[str], info: DataInfo) -> ChipIndex:
    """Every record's key, scene, labels, ground sample distance and product, in file order."""
    parse = records.parse_fn(info.dtype, info.shape)
    parts: dict[str, list] = {"keys": [], "scene_ids": [], "labels": [], "gsd_m": [], "products": []}
    for batch in raw_dataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(1024):
        parts["keys"].append(chip_key(batch).numpy())
        parts["scene_ids"].append(batch["scene_id"].numpy())
        parts["labels"].append(batch["labels"].numpy())
        parts["gsd_m"].append(batch["gsd_m"].numpy())
        parts["products"].append(batch["product"].numpy())
    if not parts["keys"]:
        raise ValueError("the chip records are empty")
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return ChipIndex(**{**joined, "labels": joined["labels"].astype(np.int64)})


def domain_facts(chips: ChipIndex) -> tuple[float | None, str]:
    """``(gsd_m, product)`` of a chip set: the median ground sample distance of the chips that know it,
    to the centimetre (a pixel's geodesic size moves by a few tenths of a per cent with latitude and
    projection: 3 m UTM pixels measure 3.0008 m; the scans' grid takes this as its cell size), and their
    product, which must be one (a model learns one kind of values)."""
    known = chips.gsd_m[chips.gsd_m > 0]
    products, counts = np.unique(chips.products, return_counts=True)
    if len(products) > 1:
        mix = ", ".join(f"{p.decode()} {n}" for p, n in zip(products, counts))
        raise ValueError(f"the chips mix products ({mix}); train on one product, or re-chip with --product")
    return (round(float(np.median(known)), 2) if known.size else None), products[0].decode()


def split(keys: np.ndarray, scene_ids: np.ndarray, labels: np.ndarray, val_fraction: float = 0.3,
          seed: int = 0, by: str = "chip") -> np.ndarray:
    """Boolean mask of validation chips.

    ``by="chip"``: stratified by each chip's rarest label, so every label with at least two chips lands
    in both parts. ``by="scene"``: whole scenes go to one side, keeping neighbouring chips apart.
    """
    rng = np.random.default_rng(seed)
    n = len(keys)
    val = np.zeros(n, dtype=bool)
    if by == "scene":
        scenes = np.unique(scene_ids)
        rng.shuffle(scenes)
        counts = {s: c for s, c in zip(*np.unique(scene_ids, return_counts=True))}
        taken = 0
        for scene in scenes:
            if taken >= val_fraction * n:
                break
            val[scene_ids == scene] = True
            taken += counts[scene]
        return val
    frequency = labels.sum(axis=0)
    rarity = np.where(labels > 0, frequency[None, :], np.iinfo(np.int64).max)
    stratum = np.where(labels.any(axis=1), rarity.argmin(axis=1), NUM_LABELS)
    for value in np.unique(stratum):
        members = np.flatnonzero(stratum == value)
        rng.shuffle(members)
        k = int(round(val_fraction * len(members)))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        val[members[:k]] = True
    return val


def band_indexes(info: DataInfo, bands: Sequence[str]) -> list[int]:
    missing = [b for b in bands if b not in info.bands]
    if missing:
        raise UserError(f"--bands: the chips have bands {list(info.bands)}; {missing} not among them")
    return [info.bands.index(b) for b in bands]


def dihedral(image: tf.Tensor) -> tf.Tensor:
    """One of the 8 rotations/reflections of a square chip, at random (chips have no "up")."""
    k = tf.random.uniform([], 0, 4, dtype=tf.int32)
    image = tf.image.rot90(image, k)
    return tf.cond(tf.random.uniform([]) < 0.5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)


def dataset(files: Sequence[str], info: DataInfo, bands: Sequence[str], keep_ids: np.ndarray | None,
            batch_size: int, training: bool, cache: str | None = None, seed: int = 0) -> tf.data.Dataset:
    """``(chips, labels)`` batches. ``keep_ids``: chip keys (:func:`chip_key`) of this split (``None``: all).

    ``cache``: ``"memory"``, a file path, or ``None``; the cache holds parsed chips before augmentation.
    """
    parse = records.parse_fn(info.dtype, info.shape)
    selected = tf.constant(band_indexes(info, bands), dtype=tf.int32)
    ds = raw_dataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if keep_ids is not None:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keep_ids), tf.ones(len(keep_ids), tf.int32)), 0)
        ds = ds.filter(lambda r: table.lookup(chip_key(r)) > 0)
    ds = ds.map(lambda r: (tf.cast(tf.gather(r["image"], selected, axis=-1), tf.float32), r["labels"]),
                num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache() if cache == "memory" else ds.cache(cache)
    if training:
        ds = ds.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda x, y: (dihedral(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    if keep_ids is not None:
        # The filter hides the count from tf.data; Keras, not knowing how many batches an epoch has, warns
        # "Your input ran out of data" at the end of every first epoch. The split's keys are unique chips.
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(keep_ids) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class BandStatistics:
    """Per-band figures of the training split: the model's normalisation and the scan's drift check."""

    mean: list[float]
    variance: list[float]
    p1: list[float]  # 1st percentile of pixel values
    p99: list[float]  # 99th percentile


def band_statistics(files: Sequence[str], info: DataInfo, bands: Sequence[str], keep_ids: np.ndarray,
                    max_chips: int = 4000, seed: int = 0) -> BandStatistics:
    """Per-band mean, variance and 1st/99th percentiles of the training split (at most ``max_chips``
    chips, in file order; percentiles from 1,024 random pixels of each chip)."""
    ds = dataset(files, info, bands, keep_ids, batch_size=64, training=False).unbatch().take(max_chips)
    rng = np.random.default_rng(seed)
    total = np.zeros(len(bands))
    total_sq = np.zeros(len(bands))
    count = 0
    samples = []
    for x, _ in ds.batch(256):
        pixels = x.numpy().reshape(len(x), -1, len(bands)).astype(np.float64)
        total += pixels.sum(axis=(0, 1))
        total_sq += (pixels**2).sum(axis=(0, 1))
        count += pixels.shape[0] * pixels.shape[1]
        picks = rng.integers(0, pixels.shape[1], size=(pixels.shape[0], min(1024, pixels.shape[1])))
        samples.append(np.take_along_axis(pixels, picks[:, :, None], axis=1).reshape(-1, len(bands)))
    mean = total / count
    variance = np.maximum(total_sq / count - mean**2, 1e-6)
    sample = np.concatenate(samples)
    return BandStatistics(mean.tolist(), variance.tolist(), np.percentile(sample, 1, axis=0).tolist(),
                          np.percentile(sample, 99, axis=0).tolist())
