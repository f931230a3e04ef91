"""A Kaggle submission: a bundle's labels for every test image, in the competition's format.

    planet-tiles predict --bundle bundles/v3 --kaggle_images test-jpg/ --kaggle_images test-jpg-additional/ \
        --sample_submission sample_submission_v2.csv --output submission.csv

Writes ``image_name,tags`` with one row per image (tags space-separated, in label order, at or above the
bundle's thresholds). The competition rejects a submission that lacks a test image, so an image that
cannot be read, or one ``--sample_submission`` lists that no folder holds, is reported (one line each
in ``OUTPUT.errors.jsonl``, the count and the first few on stderr) and the run exits 1; the rows of
every readable image are still written, to look at.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence

import numpy as np

from planet_core import commands, logs, storage
from planet_core.errors import UserError
from planet_core.imagery import UNKNOWN
from planet_model import bundle, kaggle, thresholds
from planet_model.bundle import BundleMeta

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("predict", __doc__)
    p.add_argument("--bundle", required=True, help="model bundle folder, local or gs://")
    p.add_argument("--kaggle_images", action="append", required=True,
                   help="a folder of test images (test-jpg/, test-jpg-additional/); repeat for several")
    p.add_argument("--kaggle_format", choices=kaggle.FORMATS, help="jpg or tif (default: what the folders hold)")
    p.add_argument("--sample_submission", help="the competition's sample_submission_v2.csv: every image it lists "
                                               "must be predicted, and rows follow its order")
    p.add_argument("--output", required=True, help="submission CSV to write, local or gs://")
    p.add_argument("--batch_size", type=int, default=64, help="images per model call")
    p.add_argument("--weather_one", action="store_true",
                   help="exactly one weather label per image (the one with the largest probability relative to its "
                        "threshold): every image of the competition's data has exactly one; it costs mean F2 "
                        "(see planet_model/thresholds.py)")
    return p


def check_domain(meta: BundleMeta, kind: str) -> list[int]:
    """The image band indexes the bundle reads; a bundle of another product or bands is refused."""
    bands = kaggle.TIF_BAND_ORDER if kind == "tif" else ("red", "green", "blue")
    available = ("red", "green", "blue", "nir") if kind == "tif" else ("red", "green", "blue")
    missing = [b for b in meta.bands if b not in available]
    if missing:
        raise UserError(f"--bundle {meta.version}: it reads {', '.join(meta.bands)}; the .{kind} images "
                        f"have {', '.join(b for b in bands)}")
    product = meta.domain.product
    if product != UNKNOWN and product != kaggle.PRODUCTS[kind]:
        raise UserError(f"the bundle was trained on {product} imagery; .{kind} images are {kaggle.PRODUCTS[kind]}: "
                        f"predict on the test-{'jpg' if product == 'visual' else 'tif-v2'} images")
    return [available.index(b) for b in meta.bands]


def listed(path: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(storage.read_text(path))))
    if not rows or [c.strip() for c in rows[0][:2]] != list(kaggle.SUBMISSION_HEADER):
        raise UserError(f"--sample_submission {path}: not a submission CSV (header image_name,tags)")
    return [row[0] for row in rows[1:] if row]


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run(argv: Sequence[str] | None = None) -> dict:
    """Write the submission; return counts and the problems found."""
    args = build_parser().parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch_size {args.batch_size}: must be a positive number of images")
    if os.path.isdir(args.output):
        raise UserError(f"--output {args.output}: a folder; give the submission CSV's file name")
    meta = bundle.read_metadata(args.bundle)
    kinds = {kaggle.image_format(folder, args.kaggle_format) for folder in args.kaggle_images}
    if len(kinds) > 1:
        raise UserError("--kaggle_images: the folders hold different kinds of image; pass one kind (--kaggle_format)")
    kind = kinds.pop()
    indexes = check_domain(meta, kind)
    where: dict[str, str] = {}
    for folder in args.kaggle_images:
        for name in kaggle.image_names(folder, kind):
            if name in where:
                raise UserError(f"--kaggle_images: {name}.{kind} is in both {where[name]} and {folder}")
            where[name] = folder
    expected = listed(args.sample_submission) if args.sample_submission else sorted(where)
    problems = [{"image_name": name, "reason": "not in any --kaggle_images folder"} for name in expected
                if name not in where]
    present = [name for name in expected if name in where]
    model = bundle.load_model(args.bundle, meta)
    cut = np.array([meta.thresholds[n] for n in meta.labels], dtype=np.float32)
    size = meta.chip_size
    tags: dict[str, list[str]] = {}
    for block in batches(present, args.batch_size):
        images, names = [], []
        for name in block:
            uri = storage.join(where[name], f"{name}.{kind}")
            try:
                image, _ = kaggle.read_image(uri, kind)
                if image.shape[:2] != (size, size):
                    raise ValueError(f"{image.shape[1]}x{image.shape[0]} px; the bundle reads {size}x{size}")
            except (OSError, ValueError) as error:
                problems.append({"image_name": name, "uri": uri, "reason": f"{type(error).__name__}: {error}"})
                continue
            images.append(image[..., indexes])
            names.append(name)
        if not images:
            continue
        probabilities = np.asarray(model.predict_on_batch(np.stack(images).astype(np.float32)))
        for name, on in zip(names, thresholds.apply(probabilities, cut, args.weather_one)):
            tags[name] = [label for label, flag in zip(meta.labels, on) if flag]
    rows = [(name, tags[name]) for name in expected if name in tags]
    written = kaggle.write_submission(args.output, rows) if rows else 0  # no row: the earlier file stays
    errors_path = args.output + ".errors.jsonl"
    # This run's error lines, none included: an earlier run's never stand beside this run's submission.
    storage.write_text(errors_path, "".join(json.dumps(p) + "\n" for p in problems))
    return {"output": args.output, "images": len(expected), "written": written, "problems": problems,
            "errors": errors_path, "bundle": meta.version}


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    result = run(argv)
    print(json.dumps({k: result[k] for k in ("output", "images", "written", "bundle")}))
    if result["problems"]:
        first = "; ".join(f"{p['image_name']}: {p['reason']}" for p in result["problems"][:3])
        outcome = (f"{result['output']} is unchanged: no image had a row" if not result["written"] else
                   "Kaggle rejects a submission without every test image")
        print(f"planet-tiles predict: {len(result['problems'])} of {result['images']} images have no row ({first}); "
              f"all in {result['errors']}. {outcome}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
