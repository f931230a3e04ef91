"""Input pipeline: chip TFRecords -> shuffled, augmented, batched ``tf.data`` datasets.

Chips reach the model as stored (full chip size, float32 of the native values, the chosen bands in
record order); resizing and normalisation happen inside the model (:mod:`planet_model.model`).
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from planet_model import records
from planet_model.labels import NUM_LABELS


@dataclass(frozen=True)
class DataInfo:
    """What every record of a chip set shares, read from its first record."""

    dtype: str
    shape: tuple[int, int, int]
    bands: tuple[str, ...]
    resolution_m: float | None


def list_files(location: str) -> list[str]:
    """TFRecord files: a folder (its ``chips-*.tfrecord[.gz]``), a glob, or one file."""
    if any(ch in location for ch in "*?["):
        pattern = location
    elif tf.io.gfile.isdir(location):
        pattern = location.rstrip("/") + "/chips-*.tfrecord*"
    else:
        pattern = location
    files = sorted(tf.io.gfile.glob(pattern) if "://" in pattern else globlib.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no chip records at {location!r}")
    return files


def _compression(files: Sequence[str]) -> str:
    return "GZIP" if files[0].endswith(".gz") else ""


def raw_dataset(files: Sequence[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(list(files), compression_type=_compression(files),
                                   num_parallel_reads=tf.data.AUTOTUNE)


def peek(files: Sequence[str]) -> DataInfo:
    first = records.decode(next(iter(raw_dataset(files[:1]).take(1))).numpy())
    resolution = None
    if first.transform and first.crs:
        from pyproj import CRS

        crs = CRS.from_user_input(first.crs)
        resolution = abs(first.transform[0])
        if crs.is_geographic:
            resolution *= 111_320.0
        elif crs.to_epsg() == 3857 and first.bounds:  # Web Mercator metres shrink with latitude
            resolution *= float(np.cos(np.radians((first.bounds[1] + first.bounds[3]) / 2)))
    return DataInfo(str(first.image.dtype), first.image.shape, first.bands, resolution)


def chip_key(record: dict) -> tf.Tensor:
    """``scene_id|tile_id``: what identifies a chip. A fixed grid (WebMercatorQuad) gives the same
    tile id to every acquisition of a place, so the tile id alone does not."""
    return tf.strings.join([record["scene_id"], record["tile_id"]], separator="|")


def index(files: Sequence[str], info: DataInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``chip keys, scene_ids, labels`` of every record, in file order (for splitting)."""
    parse = records.parse_fn(info.dtype, info.shape)
    ids, scenes, labels = [], [], []
    for batch in raw_dataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(1024):
        ids.append(chip_key(batch).numpy())
        scenes.append(batch["scene_id"].numpy())
        labels.append(batch["labels"].numpy())
    if not ids:
        raise ValueError("the chip records are empty")
    return np.concatenate(ids), np.concatenate(scenes), np.concatenate(labels).astype(np.int64)


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
        raise ValueError(f"the chips have bands {list(info.bands)}; {missing} not among them")
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
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def band_statistics(files: Sequence[str], info: DataInfo, bands: Sequence[str], keep_ids: np.ndarray,
                    max_chips: int = 4000) -> tuple[list[float], list[float]]:
    """Per-band mean and variance of the training split (at most ``max_chips`` chips, in file order)."""
    ds = dataset(files, info, bands, keep_ids, batch_size=64, training=False).unbatch().take(max_chips)
    total = np.zeros(len(bands))
    total_sq = np.zeros(len(bands))
    count = 0
    for x, _ in ds.batch(256):
        pixels = x.numpy().reshape(-1, len(bands)).astype(np.float64)
        total += pixels.sum(axis=0)
        total_sq += (pixels**2).sum(axis=0)
        count += len(pixels)
    mean = total / count
    variance = np.maximum(total_sq / count - mean**2, 1e-6)
    return mean.tolist(), variance.tolist()
