"""Ensembles and test-time augmentation: one bundle whose model averages others, or averages itself over
the 8 symmetries of a chip; the road from the study's 0.889 towards the competition's 0.93.

    planet-tiles ensemble --bundle bundles/v3 --bundle bundles/cnn --data chips/ [--tta] --output bundles/ens

The result is a bundle like any other (scan, evaluate, predict and the streaming handler need no special
case): its model file takes the chips as stored, gives each member the bands it reads
(:class:`planet_model.model.SelectBands`; members may differ in architecture, input size and bands, as
long as they read the same chips: one chip size, dtype, product and ground resolution), and averages
their probabilities; with ``--tta`` it also averages over the 8 dihedral transforms of the chip
(:class:`planet_model.model.Dihedral`), inside the model, so every user of the bundle gets it and a bundle
without it stays fast. Averaging changes the probabilities, so thresholds are searched again on the
ensemble's predictions: on the members' own validation split (``--split validation``, the default; it
must be the same split for every member) or on every chip given (``--split all``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
from collections.abc import Sequence

import numpy as np

from planet_core import commands, logs, storage
from planet_core.errors import UserError
from planet_core.labels import LABELS
from planet_model import bundle, evaluate, metrics, plots, thresholds
from planet_model.bundle import BundleMeta

log = logging.getLogger(__name__)
BAND_ORDER = ("red", "green", "blue", "nir")


def combine(  # noqa: ANN201 - a Keras model out; Keras is imported only here
        members: Sequence, member_bands: Sequence[Sequence[str]], bands: Sequence[str], chip_size: int, tta: bool):
    """A model from chips ``(chip_size, chip_size, len(bands))`` to the mean of the members' probabilities
    (and of the 8 dihedral transforms of the chip, with ``tta``)."""
    import keras  # noqa: PLC0415 - Keras brings TensorFlow (5 s): only where a model is built or loaded

    from planet_model.model import Dihedral, SelectBands  # noqa: PLC0415 - the model module imports Keras (5 s): only where a model is built or loaded

    inputs = keras.Input((chip_size, chip_size, len(bands)), name="chip")
    for i, member in enumerate(members):
        member.name = f"member{i + 1}_{member.name}"

    def average(outputs: list):  # noqa: ANN202
        return outputs[0] if len(outputs) == 1 else keras.layers.Average()(outputs)

    def call(member, x):  # noqa: ANN001, ANN202
        out = member(x)
        return out[0] if isinstance(out, (list, tuple)) else out  # a loaded bundle's model gives [probabilities]

    def body(x):  # noqa: ANN001, ANN202
        return average([call(member, x if list(mb) == list(bands) else SelectBands([bands.index(b) for b in mb])(x))
                        for member, mb in zip(members, member_bands)])

    if tta:
        views = [Dihedral(t, r, c, name=f"dihedral_{int(t)}{int(r)}{int(c)}")(inputs)
                 for t, r, c in itertools.product((False, True), repeat=3)]
        outputs = average([body(v) for v in views])
    else:
        outputs = body(inputs)
    return keras.Model(inputs, outputs, name="ensemble")


def _common(metas: Sequence[BundleMeta]) -> dict:
    """What every member must share, and the ensemble's bands (the union, in red, green, blue, nir order)."""
    for key in ("chip_size", "dtype"):
        if len({getattr(m, key) for m in metas}) > 1:
            raise UserError(f"--bundle: the members read different chips ({key} "
                            f"{', '.join(str(getattr(m, key)) for m in metas)}); an ensemble's members read the "
                            "same chips")
    for key in ("product", "gsd_m"):
        values = {getattr(m.domain, key) for m in metas}
        if len(values) > 1:
            raise UserError(
                f"--bundle: the members learned from different imagery (domain.{key} {sorted(map(str, values))})"
            )
    bands = [b for b in BAND_ORDER if any(b in m.bands for m in metas)]
    ranges, mean, variance = {}, [], []
    for b in bands:
        first = next(m for m in metas if b in m.bands)
        i = first.bands.index(b)
        if b in first.domain.band_ranges:
            ranges[b] = list(first.domain.band_ranges[b])
        mean.append(first.normalization.mean[i])
        variance.append(first.normalization.variance[i])
    # Value ranges for every band or none: a band without one would be checked against nothing (a scan
    # counts a tile out of domain by its bands' ranges), so one unknown range leaves them all unknown.
    domain = {**dataclasses.asdict(metas[0].domain), "bands": bands,
              "band_ranges": ranges if len(ranges) == len(bands) else {}}
    return {"bands": bands, "domain": domain, "normalization": {"mean": mean, "variance": variance}}


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("ensemble", __doc__)
    p.add_argument("--bundle", action="append", required=True, help="a member bundle; repeat for each (one with --tta)")
    p.add_argument("--data", required=True, nargs="+", help="labelled chip records to search the thresholds on")
    p.add_argument("--split", choices=evaluate.SPLITS, default="validation",
                   help="validation (default): the members' own validation split; all: every chip given")
    p.add_argument(
        "--tta", action="store_true", help="average over the 8 dihedral transforms of each chip (8x the cost)"
    )
    p.add_argument("--output", required=True, help="the new bundle's folder, local or gs://")
    p.add_argument("--batch_size", type=int, default=64, help="chips per model call")
    return p


def run(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch_size {args.batch_size}: must be a positive number of chips")
    if any(storage.same_place(args.output, path) for path in args.bundle):
        raise UserError(f"--output {args.output}: one of the members (--bundle); the ensemble would replace that "
                        "bundle, which it still names as a member. Write it to a folder of its own")
    bundle.check_folder(args.output)
    metas = [bundle.read_metadata(path) for path in args.bundle]
    seen: dict[str, str] = {}
    for path, meta in zip(args.bundle, metas):
        if meta.version in seen:
            raise UserError(f"--bundle {path}: the same model as --bundle {seen[meta.version]} (version "
                            f"{meta.version}); an ensemble holding it twice predicts what it predicts alone")
        seen[meta.version] = path
    common = _common(metas)
    chips = [evaluate.load_chips(args.data, m, args.split) for m in metas]
    if any(not np.array_equal(np.sort(c.keys), np.sort(chips[0].keys)) for c in chips[1:]):
        raise UserError("--split validation: the members were validated on different chips (different split rules "
                        "or seeds); their thresholds would be searched on chips some member trained on. Use "
                        "--split all with held-out chips")
    members = [bundle.load_model(path, meta) for path, meta in zip(args.bundle, metas)]
    model = combine(members, [m.bands for m in metas], common["bands"], metas[0].chip_size, args.tta)
    probabilities, y = evaluate.predict(model, chips[0], common["bands"], args.batch_size)
    found, best = thresholds.search(y, probabilities)
    figures = {"at_0.5": metrics.mean_f2(y, probabilities >= 0.5), "at_0.2": metrics.mean_f2(y, probabilities >= 0.2),
               "searched": best, "per_label": metrics.per_label(y, thresholds.apply(probabilities, found)),
               "validation_chips": int(len(y)),
               "training_chips": max(m.metrics.get("training_chips", 0) for m in metas)}
    log.info("ensemble of %d%s: F2 %.4f at 0.5, %.4f with searched thresholds", len(metas),
             " with TTA" if args.tta else "", figures["at_0.5"], best)
    files = plots.threshold_figures(y, probabilities, found)
    members_meta = [{"bundle": path, "version": m.version, "arch": m.arch, "input_size": m.input_size,
                     "bands": m.bands, "searched_f2": m.metrics.get("searched")}
                    for path, m in zip(args.bundle, metas)]
    return bundle.save(model, args.output, {
        "thresholds": {name: float(t) for name, t in zip(LABELS, found)},
        "chip_size": metas[0].chip_size, "input_size": max(m.input_size for m in metas),
        "dtype": metas[0].dtype, **common, "arch": "ensemble", "tta": args.tta,
        "training": {"members": members_meta, "data": args.data, "split": metas[0].training.get("split"),
                     "threshold_split": args.split, "options": {"tta": args.tta}},
        "metrics": figures,
    }, files)


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    meta = run(argv)
    print(json.dumps({"bundle": meta.version, "members": len(meta.training["members"]), "tta": meta.tta,
                      "f2": meta.metrics["searched"]}))


if __name__ == "__main__":
    main()
