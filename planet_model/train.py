"""Training: chip TFRecords -> a model bundle, by the study's method.

    python -m planet_model.train --data chips/ --output bundle/ [--arch inception_v3 --weights imagenet]

Inception V3 trains in two stages: (1) base frozen, head trained with Adam (``--head_epochs 20``);
(2) layers from ``--finetune_from_layer 172`` on unfrozen, SGD lr 0.01 momentum 0.9
(``--finetune_epochs 70``). Loss: binary cross-entropy + 1e-4 x the weather co-occurrence penalty.
Per-label thresholds are then searched on the validation split and everything goes into the bundle.
``simple_cnn`` (the study's baseline) and ``small_resnet`` (for 32-px thumbnails) train in one stage of
``--head_epochs``. ``--arch resnet50`` and ``efficientnet_b0`` put the study's head on another Keras
application, trained the same way.

Options the competition's users tried, off by default (``benchmarks/recipe_options.py`` measures them
against the study's recipe): ``--input_size`` (140; 224 and 256 cost more), ``--lr_schedule cosine`` (each
stage's learning rate decays to 0 along a half cosine) or ``plateau`` (halved after 3 epochs without a
better validation loss), and ``--label_smoothing`` (targets pulled towards 0.5 by that much).

``--recipe kaggle-32`` trains the recipe measured on the competition's real chips as 32-px thumbnails
(``benchmarks/kaggle_real.py``): ``--arch small_resnet`` from scratch, 28 epochs of a cosine-decayed Adam,
15 % of the chips for validation and the threshold search. A flag given beside a recipe wins.

Each epoch is checkpointed (Keras ``BackupAndRestore`` under ``--workdir``); ``--resume`` continues an
interrupted run from its last completed epoch. On GPUs: mixed precision and ``MirroredStrategy`` over
all of them; ``--jit_compile`` turns on XLA. The same code runs on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from planet_core import commands, logs, storage
from planet_core.errors import UserError
from planet_core.imagery import RGBN
from planet_model import bundle
from planet_model.architectures import (
    APPLICATIONS,
    ARCHS,
    AUTO_CACHE,
    DEFAULT_INPUT_SIZE,
    FINETUNE_FROM,
    LR_SCHEDULES,
    RECIPES,
    WEATHER_HEADS,
)
from planet_model.bundle import BundleMeta

log = logging.getLogger("planet_model.train")


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("train", __doc__)
    p.add_argument("--data", required=True, nargs="+", help="chip sets (folders `chip` wrote), globs or files "
                                                            "(local or gs://); several are read as one")
    p.add_argument("--output", required=True, help="bundle folder to write (local or gs://)")
    p.add_argument("--workdir", help="checkpoints and history: a folder on this machine or a mounted bucket "
                                      "(default: OUTPUT.work; needed when OUTPUT is gs://)")
    p.add_argument("--recipe", choices=RECIPES,
                   help="a measured set of the options below for a kind of data (flags given beside it win): "
                        + "; ".join(f"{name}: " + " ".join(f"--{k} {v}" for k, v in options.items())
                                    for name, options in RECIPES.items()))
    p.add_argument("--arch", choices=ARCHS, default="inception_v3",
                   help="the model: the study's Inception V3, two other ImageNet models, the study's small CNN, "
                        "or a small residual network for 32-px chips")
    p.add_argument("--weights", default="imagenet",
                   help="imagenet, none, or a local notop weights file of the --arch application")
    p.add_argument("--bands", default="red,green,blue", help="bands fed to the model, e.g. red,green,blue,nir")
    p.add_argument("--input_size", type=int, help="model input size (default 140; 64 for simple_cnn)")
    p.add_argument("--weather_head", choices=WEATHER_HEADS, default="sigmoid",
                   help="softmax over the 4 weather labels, or sigmoid for all 17 (the study)")
    p.add_argument("--head_epochs", type=int, default=20, help="epochs of stage 1: the new head alone, Adam")
    p.add_argument("--finetune_epochs", type=int, default=70,
                   help="epochs of stage 2: the head and the upper layers, SGD (0: no stage 2)")
    p.add_argument("--finetune_from_layer", type=int,
                   help="stage 2 unfreezes the base from this layer on (default per arch: "
                        + ", ".join(f"{a} {n}" for a, n in FINETUNE_FROM.items()) + ")")
    p.add_argument("--batch_size", type=int, default=128, help="chips per training step")
    p.add_argument("--head_learning_rate", type=float, default=1e-3, help="Adam, stage 1")
    p.add_argument("--finetune_learning_rate", type=float, default=0.01, help="SGD, stage 2")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of stage 2")
    p.add_argument("--lr_schedule", choices=LR_SCHEDULES, default="constant",
                   help="constant (the study), cosine decay over each stage, or halve on a validation-loss plateau")
    p.add_argument("--label_smoothing", type=float, default=0.0, help="label smoothing of the cross-entropy (0: off)")
    p.add_argument("--l2", type=float, default=0.01, help="L2 factor of the Dense(512) layer")
    p.add_argument("--cooccurrence_weight", type=float, default=1e-4,
                   help="weight of the co-occurrence penalty added to binary cross-entropy (the study's 0.0001)")
    p.add_argument("--cooccurrence_penalty", choices=("weather", "labels"), default="weather",
                   help="weather: the study's C_o; labels: every pair never seen together in training")
    p.add_argument("--val_fraction", type=float, default=0.3,
                   help="share of the chips held out for validation and the threshold search")
    p.add_argument("--split_by", choices=("chip", "scene"), default="chip",
                   help="hold out whole scenes (scene) or single chips (chip) for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=AUTO_CACHE,
                   help="where parsed chips are kept after the first epoch: none (read again every epoch), "
                        "memory, a file path for tf.data's cache, or auto (memory when the chips' bands "
                        "fit in a quarter of the machine's free memory, else none)")
    p.add_argument("--max_stat_chips", type=int, default=4000, help="chips used for band statistics")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from --workdir")
    p.add_argument("--jit_compile", action="store_true", help="XLA compilation")
    p.add_argument("--mixed_precision", choices=("auto", "on", "off"), default="auto",
                   help="mixed float16 (auto: on when a GPU is present)")
    p.add_argument("--verbose", type=int, default=1, help="Keras progress: 0 silent, 1 bar, 2 one line per epoch")
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options, a ``--recipe``'s values in place of the defaults: flags given beside it win."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.recipe:
        p.set_defaults(**RECIPES[args.recipe])
        args = p.parse_args(argv)
    return args


def check(args: argparse.Namespace) -> None:
    """Refuse values that would fail inside TensorFlow after the chips are read, or train something other
    than asked without a word (a negative learning rate climbs the loss, ``--val_fraction 0`` searches the
    thresholds on almost nothing, no epoch at all exports an untrained model), before any work."""
    for flag, least in (("batch_size", 1), ("max_stat_chips", 1), ("input_size", 1), ("head_epochs", 0),
                        ("finetune_epochs", 0), ("finetune_from_layer", 0), ("l2", 0), ("cooccurrence_weight", 0)):
        value = getattr(args, flag)
        if value is not None and value < least:
            raise UserError(f"--{flag} {value}: must be at least {least}")
    for flag in ("head_learning_rate", "finetune_learning_rate"):
        if not getattr(args, flag) > 0:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be above 0")
    for flag in ("momentum", "label_smoothing"):
        if not 0 <= getattr(args, flag) < 1:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be at least 0 and under 1")
    if not 0 < args.val_fraction < 1:
        raise UserError(f"--val_fraction {args.val_fraction}: must be above 0 and under 1")
    staged = args.arch in APPLICATIONS
    if args.head_epochs + (args.finetune_epochs if staged else 0) < 1:
        raise UserError("--head_epochs 0" + (" and --finetune_epochs 0" if staged else "") + ": no epoch to train")
    unknown = [b for b in (b.strip() for b in args.bands.split(",")) if b not in RGBN]
    if unknown:
        raise UserError(f"--bands {args.bands}: {', '.join(unknown)} not a band of chips ({', '.join(RGBN)})")
    if args.workdir and "://" in args.workdir:
        raise UserError(f"--workdir {args.workdir}: must be a folder on this machine (or a mounted bucket, "
                        "/gcs/BUCKET/... on Vertex AI): checkpoints are written and locked as files")
    if not args.workdir and "://" in args.output:
        raise UserError(f"--output {args.output}: a bucket, so its default --workdir (OUTPUT.work) is not a folder "
                        "on this machine; give --workdir a local folder or a mounted bucket for the checkpoints")
    bundle.check_folder(args.output)
    cached_in = os.path.dirname(args.cache) if args.cache not in ("none", "memory", AUTO_CACHE) else ""
    if cached_in and not storage.exists(cached_in):
        raise UserError(f"--cache {args.cache}: its folder {cached_in} does not exist")


def run(argv: Sequence[str] | None = None, callbacks: Sequence = ()) -> BundleMeta:
    """Train and export a bundle; returns the bundle's metadata. ``callbacks`` go to every ``fit``.

    The steps (:mod:`planet_model.training`): read and split the chips, set up the devices, build the
    input pipelines and the model, fit each stage, search the thresholds on the validation split, export."""
    args = parse(argv)
    check(args)
    if args.recipe:
        log.info("recipe %s: %s", args.recipe, " ".join(f"--{k} {getattr(args, k)}" for k in RECIPES[args.recipe]))
    from planet_model import training  # noqa: PLC0415 - TensorFlow (5 s) only once a run starts, not for --help

    bands = tuple(b.strip() for b in args.bands.split(","))
    chips = training.read_chips(args.data, args.val_fraction, args.seed, args.split_by)
    input_size = args.input_size or DEFAULT_INPUT_SIZE[args.arch]
    chip_size = chips.info.shape[0]
    if args.jit_compile and chip_size % input_size:
        raise UserError(f"--jit_compile: XLA cannot resize {chip_size}-px chips to {input_size} px (it has no area "
                        f"resize); pass an --input_size that divides {chip_size} (e.g. {chip_size // 2} or "
                        f"{chip_size // 4}), or train without --jit_compile")
    storage.check_writable(args.output)  # before hours of training, not at their end
    with training.claimed(args.workdir or args.output.rstrip("/") + ".work") as held:
        workdir = training.prepare_workdir(held, args.resume, vars(args))
        strategy = training.devices(args.seed, args.mixed_precision)
        inputs = training.inputs(chips, bands, args.batch_size, args.cache, args.max_stat_chips, args.seed)
        weights = None if args.weights in ("none", "") else args.weights
        with strategy.scope():
            net = training.build(args.arch, chips, inputs, input_size, weights, args.weather_head, args.l2)
        stages = training.stages(net, args.arch, args.head_epochs, args.finetune_epochs, args.finetune_from_layer)
        training.fit(net, stages, chips, inputs, strategy, workdir, vars(args), callbacks)
        result = training.validate(net, inputs.val, len(chips.train_keys))
        options = {k: v for k, v in vars(args).items() if k not in ("resume", "verbose")}
        meta = training.export(net, args.output, chips, inputs, result, stages, workdir, input_size, args.arch,
                               options)
    log.info("bundle %s written to %s", meta.version, args.output)
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    parse(argv)  # --help and usage errors on stdout and stderr as usual, before the redirect
    with contextlib.redirect_stdout(sys.stderr):  # Keras's progress bars are logs: stdout is the result alone
        meta = run(argv)
    print(json.dumps({"bundle": meta.version, "f2": meta.metrics["searched"]}))


if __name__ == "__main__":
    main()
