"""How good is a bundle, measured the same way for every step from the study's model to an ensemble.

    planet-tiles evaluate --bundle bundles/v3 [--bundle bundles/ens] --data chips/ [--split validation] \
        --output evaluation/

For each bundle, on labelled chip records: mean F2 (the competition's measure, per chip then averaged)
at 0.5, at the bundle's own thresholds, and at thresholds searched on these chips (an optimistic figure
when the chips are not held out: it says how much a re-search could gain); each with and without
``--weather_one`` decoding (exactly one weather label per chip, as the data has); per-label
precision, recall, F2 and support at the bundle's thresholds; weather consistency (the share of chips
with exactly one weather label, in the truth and in the predictions). Written as one new version of
``OUTPUT`` (:mod:`planet_core.publishing`, as ``report`` does): ``evaluation.json`` and, per bundle,
``<version>/f2_vs_threshold.png`` and ``cooccurrence.png``, which the folder's manifest ``evaluations.json``
(and on local disks the link ``OUTPUT/current``) switches to once all are written: two evaluations into
one folder, or one killed midway, never leave one's figures beside the other's numbers.

``--split validation`` evaluates on exactly the chips the bundle was validated on: the split is rebuilt
from the rule, seed and fraction the bundle records, and checked against the count and the hash of the
validation chip keys it records, so chips other than its training set are refused rather than mixed in.
``--split all`` (the default) uses every chip given: the right choice for held-out chips.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from planet_core import commands, logs, publishing, storage
from planet_core.errors import UserError
from planet_core.labels import LABELS, WEATHER_INDICES
from planet_model import bundle, metrics, plots, thresholds
from planet_model.bundle import BundleMeta

log = logging.getLogger(__name__)
SPLITS = ("all", "validation")
#: The evaluation folder's manifest (:mod:`planet_core.publishing`): the current version's files.
CURRENT = "evaluations.json"


@dataclass
class Chips:
    """Labelled chips to evaluate on: the record files, what they hold, and the chosen chips' keys
    (:func:`planet_model.data.chip_key`)."""

    files: list[str]
    info: object  # planet_model.data.DataInfo
    keys: np.ndarray


def split_record(keys: np.ndarray, mask: np.ndarray, options: Mapping) -> dict:
    """What a bundle records of its validation split, so that it can be rebuilt and checked."""
    return {"rule": options["split_by"], "seed": options["seed"], "val_fraction": options["val_fraction"],
            "chips": int(len(keys)), "validation": int(mask.sum()), "validation_keys_sha256": _digest(keys[mask])}


def _digest(keys: np.ndarray) -> str:
    return hashlib.sha256(b"\n".join(sorted(k if isinstance(k, bytes) else str(k).encode() for k in keys))).hexdigest()


def load_chips(data: Sequence[str], meta: BundleMeta, split: str) -> Chips:
    """The chips of ``--data`` for ``split`` (see the module docstring), checked against the bundle."""
    from planet_model import data as chipdata  # noqa: PLC0415 - the model and input pipeline import TensorFlow (5 s): only where training runs

    try:
        files = chipdata.list_files(data)
        info = chipdata.peek(files)
        index = chipdata.index(files, info)
    except (OSError, ValueError) as error:
        raise UserError(f"--data {' '.join(data)}: {error}") from None
    missing = [b for b in meta.bands if b not in info.bands]
    if missing:
        raise UserError(
            f"--data {' '.join(data)}: the chips have bands {list(info.bands)}; the bundle reads {meta.bands}"
        )
    if info.dtype != meta.dtype or info.shape[0] != meta.chip_size:
        raise UserError(f"--data {' '.join(data)}: {info.shape[0]}-px {info.dtype} chips; the bundle reads "
                        f"{meta.chip_size}-px {meta.dtype}")
    keys = index.keys[validation_mask(meta, index, data)] if split == "validation" else index.keys
    return Chips(files, info, keys)


def validation_mask(meta: BundleMeta, index, data: str) -> np.ndarray:  # noqa: ANN001 - planet_model.data.ChipIndex
    from planet_model import data as chipdata  # noqa: PLC0415 - the model and input pipeline import TensorFlow (5 s): only where training runs

    training = meta.training
    recorded, options = training.get("split"), training.get("options", {})
    rule = recorded or {"rule": options.get("split_by"), "seed": options.get("seed"),
                        "val_fraction": options.get("val_fraction")}
    if None in (rule["rule"], rule["seed"], rule["val_fraction"]):
        raise UserError(f"--split validation: bundle {meta.version} records no split rule; use --split all")
    mask = chipdata.split(index.keys, index.scene_ids, index.labels, rule["val_fraction"], rule["seed"], rule["rule"])
    if recorded and (
        recorded["chips"] != len(index.keys) or recorded["validation_keys_sha256"] != _digest(index.keys[mask])
    ):
        raise UserError(
            f"--data {' '.join(data)}: not the chips bundle {meta.version} was trained on ({len(index.keys)} chips, "
            f"the bundle's split was over {recorded['chips']}); --split validation needs the same chip "
            "records, or use --split all on held-out chips"
        )
    return mask


def predict(model, chips: Chips, bands: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Probabilities ``(chips, 17)`` of ``model`` on ``chips`` (read with ``bands``) and the chips' labels,
    both in the order the records yield them."""
    from planet_model import data as chipdata  # noqa: PLC0415 - the model and input pipeline import TensorFlow (5 s): only where training runs

    ds = chipdata.dataset(chips.files, chips.info, bands, chips.keys, batch_size, training=False)
    probabilities, truth = [], []
    for x, y in ds:
        probabilities.append(np.asarray(model.predict_on_batch(x)))
        truth.append(y.numpy())
    return np.concatenate(probabilities), np.concatenate(truth).astype(bool)


def figures(y: np.ndarray, probabilities: np.ndarray, cut: np.ndarray) -> dict:
    """Every figure of the module docstring for truth ``y``, ``probabilities`` and thresholds ``cut``."""
    y = np.asarray(y, dtype=bool)
    searched, best = thresholds.search(y, probabilities)
    weather = list(WEATHER_INDICES)
    at_bundle = thresholds.apply(probabilities, cut)
    return {
        "chips": int(len(y)),
        "mean_f2": {
            "at_0.5": metrics.mean_f2(y, probabilities >= 0.5),
            "bundle_thresholds": metrics.mean_f2(y, at_bundle),
            "searched_thresholds": best,
            "bundle_thresholds_weather_one": metrics.mean_f2(y, thresholds.apply(probabilities, cut, True)),
            "searched_thresholds_weather_one": metrics.mean_f2(y, thresholds.apply(probabilities, searched, True)),
        },
        "searched_thresholds": {name: float(t) for name, t in zip(LABELS, searched)},
        "per_label": metrics.per_label(y, at_bundle),
        "weather_consistency": {"truth": float((y[:, weather].sum(axis=1) == 1).mean()),
                                "predicted": float((at_bundle[:, weather].sum(axis=1) == 1).mean())},
    }


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("evaluate", __doc__)
    p.add_argument("--bundle", action="append", required=True, help="model bundle; repeat to compare several")
    p.add_argument("--data", required=True, nargs="+", help="labelled chip records (folder, file or glob; local or gs://)")
    p.add_argument("--split", choices=SPLITS, default="all",
                   help="all: every chip given (held-out chips); validation: exactly the bundle's validation split")
    p.add_argument("--output", required=True, help="folder for evaluation.json and the plots, local or gs:// (each "
                                                   "run writes a new version and switches the folder to it: read "
                                                   "current/evaluation.json)")
    p.add_argument("--batch_size", type=int, default=64, help="chips per model call")
    return p


def run(argv: Sequence[str] | None = None) -> dict:
    """Evaluate every bundle and publish ``evaluation.json`` and the figures as one new version of the output
    folder; return what ``evaluation.json`` holds, with ``folder``: where the version is read (on local disks
    the link ``OUTPUT/current``)."""
    args = build_parser().parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch_size {args.batch_size}: must be a positive number of chips")
    storage.check_writable(args.output)  # a file there was an errno after every bundle's evaluation
    storage.check_own_folder(args.output, CURRENT, "--output", "give an evaluation's folder or a new one")
    metas = [bundle.read_metadata(path) for path in args.bundle]  # every bundle checked before any work
    report, where = publishing.new_version(args.output, CURRENT, lambda folder, _: _evaluate(args, metas, folder),
                                           "evaluation.json", "evaluation")
    return {**report["evaluation"], "folder": where}


def _evaluate(args: argparse.Namespace, metas: Sequence[BundleMeta], folder: str) -> tuple[dict, list[str]]:
    """Every bundle's figures and plots, written into the run's ``folder``; the manifest's facts (the
    evaluation) and the files written."""
    results, written = [], []
    for path, meta in zip(args.bundle, metas):
        chips = load_chips(args.data, meta, args.split)
        probabilities, y = predict(bundle.load_model(path, meta), chips, meta.bands, args.batch_size)
        cut = np.array([meta.thresholds[n] for n in LABELS])
        result = {"bundle": path, "version": meta.version, "arch": meta.arch, "split": args.split,
                  "tta": meta.tta, **figures(y, probabilities, cut)}
        for name, png in plots.threshold_figures(y, probabilities, cut).items():
            written.append(storage.join(folder, meta.version, name))
            storage.write_bytes(written[-1], png)
        results.append(result)
    report = {"data": args.data, "split": args.split, "bundles": results}
    written.append(storage.join(folder, "evaluation.json"))
    storage.write_text(written[-1], json.dumps(report, indent=2))
    return {"evaluation": report}, written


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    report = run(argv)
    width = max(len(r["bundle"]) for r in report["bundles"])
    print(f"{'bundle':<{width}}  chips  F2@0.5  F2@bundle  F2@searched  +weather_one  weather ok", file=sys.stdout)
    for r in report["bundles"]:
        f2 = r["mean_f2"]
        print(f"{r['bundle']:<{width}}  {r['chips']:>5}  {f2['at_0.5']:.4f}  {f2['bundle_thresholds']:.4f}     "
              f"{f2['searched_thresholds']:.4f}       {f2['bundle_thresholds_weather_one']:.4f}        "
              f"{r['weather_consistency']['predicted']:.3f}")
    print(f"evaluation: {storage.join(report['folder'], 'evaluation.json')}")


if __name__ == "__main__":
    main()
