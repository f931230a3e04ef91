"""Training: chip TFRecords -> a model bundle, by the study's method.

    python -m planet_model.train --data chips/ --output bundle/ [--arch inception_v3 --weights imagenet]

Inception V3 trains in two stages: (1) base frozen, head trained with Adam (``--head_epochs 20``);
(2) layers from ``--finetune_from_layer 172`` on unfrozen, SGD lr 0.01 momentum 0.9
(``--finetune_epochs 70``). Loss: binary cross-entropy + 1e-4 x the weather co-occurrence penalty.
Per-label thresholds are then searched on the validation split and everything goes into the bundle.
``simple_cnn`` (the study's baseline) trains in one stage of ``--head_epochs``. ``--arch resnet50`` and
``efficientnet_b0`` put the study's head on another Keras application, trained the same way.

Options the competition's users tried, off by default (``benchmarks/recipe_options.py`` measures them
against the study's recipe): ``--input_size`` (140; 224 and 256 cost more), ``--lr_schedule cosine`` (each
stage's learning rate decays to 0 along a half cosine) or ``plateau`` (halved after 3 epochs without a
better validation loss), and ``--label_smoothing`` (targets pulled towards 0.5 by that much).

Each epoch is checkpointed (Keras ``BackupAndRestore`` under ``--workdir``); ``--resume`` continues an
interrupted run from its last completed epoch. On GPUs: mixed precision and ``MirroredStrategy`` over
all of them; ``--jit_compile`` turns on XLA. The same code runs on a CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
from collections.abc import Sequence

from planet_core import logs
from planet_core.errors import UserError
from planet_model.architectures import (
    APPLICATIONS,
    ARCHS,
    DEFAULT_INPUT_SIZE,
    FINETUNE_FROM,
    LR_SCHEDULES,
    WEATHER_HEADS,
)

log = logging.getLogger("planet_model.train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+", help="chip sets (folders `chip` wrote), globs or files "
                                                            "(local or gs://); several are read as one")
    p.add_argument("--output", required=True, help="bundle folder to write (local or gs://)")
    p.add_argument("--workdir", help="checkpoints and history (default: OUTPUT.work)")
    p.add_argument("--arch", choices=ARCHS, default="inception_v3")
    p.add_argument("--weights", default="imagenet",
                   help="imagenet, none, or a local notop weights file of the --arch application")
    p.add_argument("--bands", default="red,green,blue", help="bands fed to the model, e.g. red,green,blue,nir")
    p.add_argument("--input_size", type=int, help="model input size (default 140; 64 for simple_cnn)")
    p.add_argument("--weather_head", choices=WEATHER_HEADS, default="sigmoid",
                   help="softmax over the 4 weather labels, or sigmoid for all 17 (the study)")
    p.add_argument("--head_epochs", type=int, default=20)
    p.add_argument("--finetune_epochs", type=int, default=70)
    p.add_argument("--finetune_from_layer", type=int,
                   help="stage 2 unfreezes the base from this layer on (default per arch: "
                        + ", ".join(f"{a} {n}" for a, n in FINETUNE_FROM.items()) + ")")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--head_learning_rate", type=float, default=1e-3, help="Adam, stage 1")
    p.add_argument("--finetune_learning_rate", type=float, default=0.01, help="SGD, stage 2")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--lr_schedule", choices=LR_SCHEDULES, default="constant",
                   help="constant (the study), cosine decay over each stage, or halve on a validation-loss plateau")
    p.add_argument("--label_smoothing", type=float, default=0.0, help="label smoothing of the cross-entropy (0: off)")
    p.add_argument("--l2", type=float, default=0.01, help="L2 factor of the Dense(512) layer")
    p.add_argument("--cooccurrence_weight", type=float, default=1e-4)
    p.add_argument("--cooccurrence_penalty", choices=("weather", "labels"), default="weather",
                   help="weather: the study's C_o; labels: every pair never seen together in training")
    p.add_argument("--val_fraction", type=float, default=0.3)
    p.add_argument("--split_by", choices=("chip", "scene"), default="chip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="none", help="none, memory, or a file path for tf.data's cache")
    p.add_argument("--max_stat_chips", type=int, default=4000, help="chips used for band statistics")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from --workdir")
    p.add_argument("--jit_compile", action="store_true", help="XLA compilation")
    p.add_argument("--mixed_precision", choices=("auto", "on", "off"), default="auto",
                   help="mixed float16 (auto: on when a GPU is present)")
    p.add_argument("--verbose", type=int, default=1, help="Keras progress: 0 silent, 1 bar, 2 one line per epoch")
    return p


def _learning_rate_callback():  # noqa: ANN202 - a keras.callbacks.Callback subclass
    import keras

    class LearningRate(keras.callbacks.Callback):
        """Adds the optimizer's learning rate of the epoch to the epoch's logs (history, CSV): a schedule
        is then visible in the bundle's training history."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return LearningRate


def _history(path: str, stage: int) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return [{**{k: float(v) for k, v in row.items()}, "stage": stage} for row in csv.DictReader(handle)]


#: What training writes into ``--workdir``, per stage: all a fresh run removes there (the folder may be the
#: user's, holding other things).
WORKDIR_FILES = ("stage{stage}.weights.h5", "stage{stage}-backup", "history-stage{stage}.csv")


def _clear_workdir(workdir: str) -> None:
    """Remove an earlier run's checkpoints and history from ``workdir``, and nothing else."""
    for stage in (1, 2):
        for name in WORKDIR_FILES:
            path = os.path.join(workdir, name.format(stage=stage))
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


def run(argv: Sequence[str] | None = None, callbacks: Sequence = ()) -> dict:  # noqa: C901 - one recipe, in order
    """Train and export a bundle; returns the bundle's metadata. ``callbacks`` go to every ``fit``."""
    args = build_parser().parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    from planet_core.labels import LABELS
    from planet_model import (
        bundle,
        data,
        evaluate,
        losses,
        metrics,
        model,
        plots,
        thresholds,
    )

    bands = [b.strip() for b in args.bands.split(",")]
    input_size = args.input_size or DEFAULT_INPUT_SIZE[args.arch]
    weights = None if args.weights in ("none", "") else args.weights

    files = data.list_files(args.data)  # the chips are checked before anything is written or logged
    try:  # what is wrong with the chips is the user's to mend: one line naming --data and the file
        info = data.peek(files)
        chips = data.index(files, info)
        gsd_m, product = data.domain_facts(chips)
    except ValueError as error:
        raise UserError(f"--data {' '.join(args.data)}: {error}") from None
    keys, scene_ids, y = chips.keys, chips.scene_ids, chips.labels
    if len(set(keys.tolist())) != len(keys):
        raise UserError(f"--data {' '.join(args.data)}: a chip (scene and tile) repeats in the chip records; chip each scene once")
    val_mask = data.split(keys, scene_ids, y, args.val_fraction, args.seed, args.split_by)
    if val_mask.all() or not val_mask.any():
        raise UserError(f"--data {' '.join(args.data)}: {len(keys)} chips cannot be split into training and validation")

    workdir = args.workdir or args.output.rstrip("/") + ".work"
    if not args.resume:
        _clear_workdir(workdir)
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    gpus = tf.config.list_physical_devices("GPU")
    if args.mixed_precision == "on" or (args.mixed_precision == "auto" and gpus):
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    log.info("devices: %d GPU(s); replicas: %d", len(gpus), strategy.num_replicas_in_sync)
    train_ids, val_ids = keys[~val_mask], keys[val_mask]
    log.info("chips: %d training, %d validation (split by %s)", len(train_ids), len(val_ids), args.split_by)
    stats = data.band_statistics(files, info, bands, train_ids, args.max_stat_chips, args.seed)
    cache = None if args.cache == "none" else args.cache
    train_ds = data.dataset(files, info, bands, train_ids, args.batch_size, True, cache, args.seed)
    val_ds = data.dataset(files, info, bands, val_ids, args.batch_size, False, cache and (
        cache if cache == "memory" else cache + ".val"))
    penalty = losses.penalty_from_labels(y[~val_mask]) if args.cooccurrence_penalty == "labels" \
        else losses.weather_penalty()

    with strategy.scope():
        net = model.build(args.arch, info.shape[0], len(bands), input_size, stats.mean, stats.variance, weights,
                          args.weather_head, args.l2)
    loss = losses.CooccurrenceLoss(args.cooccurrence_weight, penalty, label_smoothing=args.label_smoothing)

    stages = [(1, args.head_epochs, None)]
    if args.arch in APPLICATIONS and args.finetune_epochs > 0:
        first = FINETUNE_FROM[args.arch] if args.finetune_from_layer is None else args.finetune_from_layer
        stages.append((2, args.finetune_epochs, first))
    steps = -(-len(train_ids) // args.batch_size)
    for stage, epochs, unfreeze_from in stages:
        done = os.path.join(workdir, WORKDIR_FILES[0].format(stage=stage))
        if args.resume and os.path.exists(done):
            log.info("stage %d already complete; loading its weights", stage)
            net.load_weights(done)
            continue
        if args.arch in APPLICATIONS:
            model.set_trainable_from(net, unfreeze_from)
        rate = args.head_learning_rate if stage == 1 else args.finetune_learning_rate
        schedule = keras.optimizers.schedules.CosineDecay(rate, epochs * steps) if args.lr_schedule == "cosine" else rate
        plateau = [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=rate / 100)
                   ] if args.lr_schedule == "plateau" else []
        with strategy.scope():
            optimizer = (keras.optimizers.Adam(schedule) if stage == 1
                         else keras.optimizers.SGD(schedule, momentum=args.momentum))
            net.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
                        jit_compile=args.jit_compile)
        log.info("stage %d: %d epochs, %s, %d trainable weights", stage, epochs, type(optimizer).__name__,
                 len(net.trainable_weights))
        net.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=args.verbose, callbacks=[
            keras.callbacks.BackupAndRestore(os.path.join(workdir, WORKDIR_FILES[1].format(stage=stage))),
            _learning_rate_callback()(),  # before the logger: it adds the epoch's rate to what is logged
            keras.callbacks.CSVLogger(os.path.join(workdir, WORKDIR_FILES[2].format(stage=stage)), append=True),
            *plateau, *callbacks,
        ])
        net.save_weights(done)

    probs = net.predict(val_ds, verbose=0)
    y_val = np.concatenate([labels for _, labels in val_ds.as_numpy_iterator()]).astype(bool)
    found, best = thresholds.search(y_val, probs)
    figures = {
        "at_0.5": metrics.mean_f2(y_val, probs >= 0.5),
        "at_0.2": metrics.mean_f2(y_val, probs >= 0.2),
        "searched": best,
        "per_label": metrics.per_label(y_val, thresholds.apply(probs, found)),
        "validation_chips": int(len(y_val)),
        "training_chips": int(len(train_ids)),
    }
    log.info("validation F2: %.4f at 0.5, %.4f at 0.2, %.4f with searched thresholds",
             figures["at_0.5"], figures["at_0.2"], figures["searched"])
    history = [h for stage, _, _ in stages for h in _history(os.path.join(workdir, WORKDIR_FILES[2].format(stage=stage)), stage)]
    files_out = {"training_curves.png": plots.training_curves(history),
                 **plots.threshold_figures(y_val, probs, found)}
    options = {k: v for k, v in vars(args).items() if k not in ("resume", "verbose")}
    meta = bundle.save(net, args.output, {
        "thresholds": {name: float(t) for name, t in zip(LABELS, found)},
        "chip_size": int(info.shape[0]),
        "input_size": input_size,
        "bands": bands,
        "dtype": info.dtype,
        "domain": {"gsd_m": gsd_m, "product": product, "dtype": info.dtype, "bands": bands,
                   "band_ranges": {b: [lo, hi] for b, lo, hi in zip(bands, stats.p1, stats.p99)}},
        "normalization": {"mean": stats.mean, "variance": stats.variance},
        "arch": args.arch,
        "training": {"options": options, "data": files, "history": history, "workdir": workdir,
                     "split": evaluate.split_record(keys, val_mask, options)},
        "metrics": figures,
    }, files_out)
    log.info("bundle %s written to %s", meta.version, args.output)
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    meta = run(argv)
    print(json.dumps({"bundle": meta.version, "f2": meta.metrics["searched"]}))


if __name__ == "__main__":
    main()
