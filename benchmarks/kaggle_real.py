"""The model on real Planet labels: the competition's 32,459 real training chips as 32-px thumbnails.

    python benchmarks/kaggle_real.py [--work DIR] [--recipe kaggle-32]
    python benchmarks/kaggle_real.py [--work DIR] [--epochs 20] [--arch simple_cnn] [--extra=TRAIN_FLAG ...]

Unpacks ``../shared/data/planet/train-jpg-32.tar.gz``, splits the chips by a fixed rule on the image name
(``train_N`` with N divisible by 5 is held out: a fifth, never trained on), chips both parts with
``planet-tiles chip --kaggle_csv``, trains on the rest (the recipe's own validation split inside it), then
on the held-out fifth prints mean F2 at 0.5, at the bundle's thresholds, with thresholds searched on the
held-out chips themselves (an upper bound), and with one weather label per chip under each decoding of
:func:`planet_model.thresholds.apply`; per-label precision, recall, F2 and support at the bundle's
thresholds; and the training time. The label-frequency baseline (each label predicted from its training
prior) is printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import re
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from pipelines import chip
from planet_core import logs
from planet_core.labels import LABELS
from planet_model import bundle, evaluate, metrics, thresholds, train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "planet"
HELD_OUT = 5  # train_N with N % HELD_OUT == 0 is held out


def held_out(name: str) -> bool:
    return int(re.search(r"(\d+)$", name).group(1)) % HELD_OUT == 0


def prepare(work: Path) -> dict[str, Path]:
    """Thumbnails unpacked, the CSV split in two, both parts chipped (once per work folder)."""
    images = work / "train-jpg-32"
    if not images.exists():
        with tarfile.open(SHARED / "train-jpg-32.tar.gz") as archive:
            archive.extractall(work, filter="data")
    present = {p.stem for p in images.glob("*.jpg")}
    rows = [r for r in csv.DictReader(open(SHARED / "train_v2.csv")) if r["image_name"] in present]
    parts = {}
    for part, keep in (("train", False), ("held_out", True)):
        path = work / f"{part}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image_name", "tags"])
            writer.writeheader()
            writer.writerows(r for r in rows if held_out(r["image_name"]) == keep)
        chips = work / f"chips-{part}"
        if not (chips / "manifest.json").exists():
            chip.run(["--kaggle_csv", str(path), "--kaggle_images", str(images), "--output", str(chips)])
        parts[part] = chips
    return parts


def score(path: Path, held_out_chips: Path, trained: list[set[str]]) -> None:
    """Every figure of one bundle on the held-out chips."""
    meta = bundle.read_metadata(str(path))
    model = bundle.load_model(str(path), meta)
    chips = evaluate.load_chips([str(held_out_chips)], meta, "all")
    probabilities, y = evaluate.predict(model, chips, meta.bands)
    cut = np.array([meta.thresholds[name] for name in LABELS])
    _, best = thresholds.search(y, probabilities)
    print(f"\n{meta.arch}{' with test-time augmentation' if meta.tta else ''}: {len(y)} held-out chips, "
          f"{len(trained)} trained on (the training run's validation split among them)")
    print(f"mean F2: at 0.5 {metrics.mean_f2(y, probabilities >= 0.5):.4f}; at the bundle's thresholds "
          f"{metrics.mean_f2(y, thresholds.apply(probabilities, cut)):.4f}; searched on these chips {best:.4f}")
    for decoding in thresholds.WEATHER_DECODINGS:
        print(f"  one weather label ({decoding}): at the bundle's thresholds "
              f"{metrics.mean_f2(y, thresholds.apply(probabilities, cut, decoding)):.4f}")
    prior = np.array([sum(name in tags for tags in trained) / len(trained) for name in LABELS])
    baseline = np.broadcast_to(prior >= 0.5, y.shape)
    print(f"label-frequency baseline (labels with a training prior of 0.5 or more): "
          f"{metrics.mean_f2(y, baseline):.4f}")
    per_label = metrics.per_label(y, thresholds.apply(probabilities, cut))
    print(f"{'label':<20} {'precision':>9} {'recall':>7} {'F2':>6} {'support':>8}")
    for name in LABELS:
        r = per_label[name]
        print(f"{name:<20} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f2']:>6.3f} {r['support']:>8}")


def main() -> None:
    logs.configure()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", help="where to unpack, chip and train (default: a temporary folder)")
    p.add_argument("--recipe",
                   help="train with this --recipe (then --epochs, --arch and --batch_size are the recipe's)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--arch", default="simple_cnn")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--extra", action="append", default=[],
                   help="a further train flag, e.g. --extra=--lr_schedule=cosine (once per flag)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="kaggle-real-"))
    work.mkdir(parents=True, exist_ok=True)
    parts = prepare(work)
    if args.recipe:
        out, flags = work / f"bundle-{args.recipe}", ["--recipe", args.recipe]
    else:
        out = work / f"bundle-{args.arch}-{args.epochs}"
        flags = ["--arch", args.arch, "--weights", "none", "--input_size", "32", "--head_epochs", str(args.epochs),
                 "--batch_size", str(args.batch_size), "--cache", "memory"]
    started = time.perf_counter()
    train.run(["--data", str(parts["train"]), "--output", str(out), *flags, "--verbose", "2", *args.extra])
    seconds = time.perf_counter() - started
    trained = [set(r["tags"].split()) for r in csv.DictReader(open(work / "train.csv"))]
    print(f"\ntraining {seconds:.0f} s ({' '.join(flags + args.extra)})")
    score(out, parts["held_out"], trained)


if __name__ == "__main__":
    main()
