"""The steps of a training run (:func:`planet_model.train.run`), each with what it hands to the next.

:func:`read_chips` (the chips and their validation split) -> :func:`devices` (seed, precision, strategy)
-> :func:`inputs` (band statistics, the training and validation pipelines) -> :func:`build` (the model)
-> :func:`stages` and :func:`fit` (each stage, checkpointed per epoch in the work folder) ->
:func:`validate` (thresholds searched on the validation split, the figures) -> :func:`export` (the bundle).

This module imports TensorFlow: the ``train`` command imports it only once a run starts.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from planet_core.errors import UserError
from planet_core.labels import LABELS
from planet_model import bundle, data, evaluate, losses, metrics, model, plots, thresholds
from planet_model.architectures import APPLICATIONS, AUTO_CACHE, FINETUNE_FROM
from planet_model.bundle import BundleMeta

log = logging.getLogger("planet_model.train")

#: What training writes into ``--workdir``, per stage: all a fresh run removes there (the folder may be the
#: user's, holding other things).
WORKDIR_FILES = ("stage{stage}.weights.h5", "stage{stage}-backup", "history-stage{stage}.csv")
#: The options a run was started with, in ``--workdir``: what ``--resume`` must repeat.
OPTIONS_FILE = "options.json"
#: The file in ``--workdir`` whose lock a running training holds (:func:`claimed`). Not the folder itself:
#: files beside a bundle's ``bundle.json`` are switched under a lock on their folder, which may be this one.
LOCK_FILE = ".training.lock"
#: Options that do not change what a resumed run computes: where it writes, how it reads and logs.
RESUMABLE_CHANGES = frozenset({"resume", "verbose", "output", "workdir", "cache", "max_stat_chips"})


@dataclass(frozen=True)
class Chips:
    """The chip records of a run, indexed, with their validation split and what they say of their domain."""

    files: list[str]
    info: data.DataInfo
    index: data.ChipIndex
    val_mask: np.ndarray  # True: a validation chip
    gsd_m: float | None
    product: str

    @property
    def train_keys(self) -> np.ndarray:
        return self.index.keys[~self.val_mask]

    @property
    def val_keys(self) -> np.ndarray:
        return self.index.keys[self.val_mask]


@dataclass(frozen=True)
class Inputs:
    """Band statistics of the training split and the two input pipelines."""

    bands: tuple[str, ...]
    stats: data.BandStatistics
    train: tf.data.Dataset
    val: tf.data.Dataset
    batch_size: int


@dataclass(frozen=True)
class Stage:
    number: int
    epochs: int
    unfreeze_from: int | None  # the first base layer trained (None: the head only)


@dataclass(frozen=True)
class Validation:
    """Thresholds searched on the validation split and the figures the bundle records."""

    thresholds: np.ndarray
    figures: dict
    y: np.ndarray
    probabilities: np.ndarray


def read_chips(sets: Sequence[str], val_fraction: float, seed: int, split_by: str) -> Chips:
    """The chips of ``--data``, checked before anything is written or logged, split into training and
    validation. What is wrong with them is the user's to mend: one line naming ``--data`` and the file."""
    files = data.list_files(sets)
    where = f"--data {' '.join(sets)}"
    try:
        info = data.peek(files)
        index = data.index(files, info)
        gsd_m, product = data.domain_facts(index)
    except ValueError as error:
        raise UserError(f"{where}: {error}") from None
    if len(set(index.keys.tolist())) != len(index.keys):
        raise UserError(f"{where}: a chip (scene and tile) repeats in the chip records; chip each scene once")
    val_mask = data.split(index.keys, index.scene_ids, index.labels, val_fraction, seed, split_by)
    if val_mask.all() or not val_mask.any():
        raise UserError(f"{where}: {len(index.keys)} chips cannot be split into training and validation")
    log.info("chips: %d training, %d validation (split by %s)", (~val_mask).sum(), val_mask.sum(), split_by)
    return Chips(files, info, index, val_mask, gsd_m, product)


@contextlib.contextmanager
def claimed(workdir: str) -> Iterator[str]:
    """Hold ``workdir`` for one training at a time (an exclusive lock on its :data:`LOCK_FILE`, released when
    the run ends, killed or not): a second run given the same work folder (the default ``OUTPUT.work`` of a
    second training into one bundle folder) removed the first's checkpoints and appended its epochs to the
    first's history, so each bundle recorded a mix of both trainings. A second run is a :class:`UserError`
    naming the folder. Where the file system has no locks (some network mounts), the folder is used unheld."""
    os.makedirs(workdir, exist_ok=True)
    handle = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"--workdir {workdir}: another training is using it (its checkpoints and history); "
                            "give this one a --workdir of its own, or wait for that run to end") from None
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        yield workdir
    finally:
        os.close(handle)  # closing the descriptor releases the lock (the empty file stays: removing it could
        # race with a run taking it)


def prepare_workdir(workdir: str, resume: bool, options: Mapping[str, object]) -> str:
    """The work folder, with an earlier run's checkpoints and history removed unless resuming (and nothing
    else of it: the folder may hold the user's files), and ``options`` (the run's flags) recorded. Resuming
    with other options is a :class:`UserError` naming them: the checkpoints are another model's (Keras
    failed on them with a traceback) or another training's, which would finish as a mix of two."""
    recorded = os.path.join(workdir, OPTIONS_FILE)
    wanted = {k: v for k, v in options.items() if k not in RESUMABLE_CHANGES}
    if resume and os.path.exists(recorded):
        with open(recorded) as handle:
            earlier = json.load(handle)
        changed = sorted(k for k in set(earlier) | set(wanted) if earlier.get(k) != wanted.get(k))
        if changed:
            raise UserError(f"--resume: {workdir} holds a run started with other options ("
                            + "; ".join(f"--{k} {earlier.get(k)!r} then, {wanted.get(k)!r} now" for k in changed)
                            + "): resume with the same options, or train again without --resume")
    if not resume:
        for stage in (1, 2):
            for name in WORKDIR_FILES:
                path = os.path.join(workdir, name.format(stage=stage))
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)
    os.makedirs(workdir, exist_ok=True)
    with open(recorded, "w") as handle:
        json.dump(wanted, handle, indent=2)
    return workdir


def devices(seed: int, mixed_precision: str) -> tf.distribute.Strategy:
    """Seed everything; mixed float16 when asked (``auto``: on a GPU); MirroredStrategy over several GPUs."""
    keras.utils.set_random_seed(seed)
    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision == "on" or (mixed_precision == "auto" and gpus):
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    log.info("devices: %d GPU(s); replicas: %d", len(gpus), strategy.num_replicas_in_sync)
    return strategy


def cache_for(chips: Chips, bands: Sequence[str], cache: str) -> str | None:
    """tf.data's cache for ``--cache``: ``None`` for none; for auto, memory when the parsed chips (float32,
    the bands used) take under a quarter of the memory free now, else none. Reading and parsing the records
    again is a third of an epoch's time for the simple CNN on 2 cores (2.1 s against 1.4 s an epoch)."""
    if cache == AUTO_CACHE:
        height, width, _ = chips.info.shape
        needed = len(chips.index.keys) * height * width * len(bands) * 4
        return "memory" if needed < _free_memory() / 4 else None
    return None if cache == "none" else cache


def _free_memory() -> int:
    """Bytes of memory available to this process now (Linux ``MemAvailable``; 0 where unknown)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def inputs(chips: Chips, bands: Sequence[str], batch_size: int, cache: str, max_stat_chips: int, seed: int) -> Inputs:
    """Band statistics of (up to ``max_stat_chips``) training chips, and the shuffled training and the
    ordered validation pipelines; ``cache``: ``--cache`` (:func:`cache_for`)."""
    stats = data.band_statistics(chips.files, chips.info, bands, chips.train_keys, max_stat_chips, seed)
    cached = cache_for(chips, bands, cache)
    train = data.dataset(chips.files, chips.info, bands, chips.train_keys, batch_size, True, cached, seed)
    val = data.dataset(chips.files, chips.info, bands, chips.val_keys, batch_size, False,
                       cached and (cached if cached == "memory" else cached + ".val"))
    return Inputs(tuple(bands), stats, train, val, batch_size)


def build(arch: str, chips: Chips, inputs: Inputs, input_size: int, weights: str | None, weather_head: str,
          l2: float) -> keras.Model:
    """The model, normalising with the training split's statistics (call inside the strategy's scope)."""
    return model.build(arch, chips.info.shape[0], len(inputs.bands), input_size, inputs.stats.mean,
                       inputs.stats.variance, weights, weather_head, l2)


def stages(net: keras.Model, arch: str, head_epochs: int, finetune_epochs: int,
           finetune_from: int | None) -> list[Stage]:
    """The head first; then, for a pre-trained application, the base from ``finetune_from`` on (default
    per architecture: layer 172 of Inception V3), which must be one of ``net``'s base layers: one past its
    last would train the head alone in stage 2, refused before stage 1."""
    found = [Stage(1, head_epochs, None)]
    if arch in APPLICATIONS and finetune_epochs > 0:
        first = FINETUNE_FROM[arch] if finetune_from is None else finetune_from
        count = len(model.base_model(net).layers)
        if not 0 <= first < count:
            raise UserError(f"--finetune_from_layer {first}: the {arch} base has layers 0 to {count - 1}")
        found.append(Stage(2, finetune_epochs, first))
    return found


class LearningRate(keras.callbacks.Callback):
    """Adds the optimizer's learning rate of the epoch to the epoch's logs (history, CSV): a schedule is
    then visible in the bundle's training history."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def fit(net: keras.Model, planned: Sequence[Stage], chips: Chips, inputs: Inputs, strategy: tf.distribute.Strategy,
        workdir: str, options: Mapping, callbacks: Sequence = ()) -> None:
    """Train each stage: Adam on the head (stage 1), SGD with momentum on the unfrozen base (stage 2),
    with the loss of the study (cross-entropy + the co-occurrence penalty). Each epoch is checkpointed
    (``BackupAndRestore``); a stage finished before (``--resume``) is loaded, not trained again."""
    penalty = (losses.penalty_from_labels(chips.index.labels[~chips.val_mask])
               if options["cooccurrence_penalty"] == "labels" else losses.weather_penalty())
    loss = losses.CooccurrenceLoss(options["cooccurrence_weight"], penalty, label_smoothing=options["label_smoothing"])
    steps = -(-len(chips.train_keys) // inputs.batch_size)
    for stage in planned:
        done = os.path.join(workdir, WORKDIR_FILES[0].format(stage=stage.number))
        if options["resume"] and os.path.exists(done):
            log.info("stage %d already complete; loading its weights", stage.number)
            net.load_weights(done)
            continue
        if options["arch"] in APPLICATIONS:
            model.set_trainable_from(net, stage.unfreeze_from)
        rate = options["head_learning_rate"] if stage.number == 1 else options["finetune_learning_rate"]
        schedule = (keras.optimizers.schedules.CosineDecay(rate, stage.epochs * steps)
                    if options["lr_schedule"] == "cosine" else rate)
        plateau = ([keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=rate / 100)]
                   if options["lr_schedule"] == "plateau" else [])
        with strategy.scope():
            optimizer = (keras.optimizers.Adam(schedule) if stage.number == 1
                         else keras.optimizers.SGD(schedule, momentum=options["momentum"]))
            net.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
                        jit_compile=options["jit_compile"])
        log.info("stage %d: %d epochs, %s, %d trainable weights", stage.number, stage.epochs,
                 type(optimizer).__name__, len(net.trainable_weights))
        # shuffle=False: the training pipeline shuffles itself (Keras would say it ignores shuffle=True)
        net.fit(inputs.train, validation_data=inputs.val, epochs=stage.epochs, verbose=options["verbose"],
                shuffle=False, callbacks=[
            keras.callbacks.BackupAndRestore(os.path.join(workdir, WORKDIR_FILES[1].format(stage=stage.number))),
            LearningRate(),  # before the logger: it adds the epoch's rate to what is logged
            keras.callbacks.CSVLogger(os.path.join(workdir, WORKDIR_FILES[2].format(stage=stage.number)), append=True),
            *plateau, *callbacks,
        ])
        net.save_weights(done)


def validate(net: keras.Model, val: tf.data.Dataset, training_chips: int) -> Validation:
    """Per-label thresholds searched on the validation split to maximise mean F2, and the figures."""
    probabilities = net.predict(val, verbose=0)
    y = np.concatenate([labels for _, labels in val.as_numpy_iterator()]).astype(bool)
    found, best = thresholds.search(y, probabilities)
    figures = {
        "at_0.5": metrics.mean_f2(y, probabilities >= 0.5),
        "at_0.2": metrics.mean_f2(y, probabilities >= 0.2),
        "searched": best,
        "per_label": metrics.per_label(y, thresholds.apply(probabilities, found)),
        "validation_chips": int(len(y)),
        "training_chips": int(training_chips),
    }
    log.info("validation F2: %.4f at 0.5, %.4f at 0.2, %.4f with searched thresholds",
             figures["at_0.5"], figures["at_0.2"], figures["searched"])
    return Validation(found, figures, y, probabilities)


def history(workdir: str, planned: Sequence[Stage]) -> list[dict]:
    """Every epoch's logged figures, from each stage's CSV log, with its stage."""
    rows = []
    for stage in planned:
        path = os.path.join(workdir, WORKDIR_FILES[2].format(stage=stage.number))
        if os.path.exists(path):
            with open(path, newline="") as handle:
                rows += [{**{k: float(v) for k, v in row.items()}, "stage": stage.number}
                         for row in csv.DictReader(handle)]
    return rows


def export(net: keras.Model, output: str, chips: Chips, inputs: Inputs, result: Validation, planned: Sequence[Stage],
           workdir: str, input_size: int, arch: str, options: dict) -> BundleMeta:
    """The bundle: the model, its thresholds, its domain (ground pixel, product, dtype, band ranges), how it
    was trained and its validation figures, with the training curves and threshold figures."""
    epochs = history(workdir, planned)
    bands, stats, dtype = list(inputs.bands), inputs.stats, chips.info.dtype
    figures = {"training_curves.png": plots.training_curves(epochs),
               **plots.threshold_figures(result.y, result.probabilities, result.thresholds)}
    return bundle.save(net, output, {
        "thresholds": {name: float(t) for name, t in zip(LABELS, result.thresholds)},
        "chip_size": int(chips.info.shape[0]),
        "input_size": input_size,
        "bands": bands,
        "dtype": dtype,
        "domain": {"gsd_m": chips.gsd_m, "product": chips.product, "dtype": dtype, "bands": bands,
                   "band_ranges": {b: [lo, hi] for b, lo, hi in zip(bands, stats.p1, stats.p99)}},
        "normalization": {"mean": stats.mean, "variance": stats.variance},
        "arch": arch,
        "training": {"options": options, "data": chips.files, "history": epochs, "workdir": workdir,
                     "split": evaluate.split_record(chips.index.keys, chips.val_mask, options)},
        "metrics": result.figures,
    }, figures)
