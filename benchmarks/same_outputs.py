"""Behaviour unchanged: the demo run by two checkouts of the project, compared output by output.

    python benchmarks/same_outputs.py --before /path/to/other/checkout [--after .] [--work /tmp/same]

Each checkout runs ``planet-tiles demo`` on the built-in data (its own code, this Python): synthetic
scenes -> chips -> a trained bundle -> three scans -> the report. The script then compares, and prints
one line each:

- scenes: every scene and mask file, byte for byte;
- chips: every chip record decoded (pixels, labels, bands, georeferencing, ground pixel, product);
- bundle: thresholds, validation figures and the model's probabilities on every chip. Training on a CPU
  is not bit-for-bit repeatable (TensorFlow's thread pools sum in varying order), so the script also
  trains again with the first checkout's code, same chips and flags: the figures of that repeat show how
  far two runs of one code fall apart;
- scans, alerts, events and the report's summary, made by the second checkout's code with the *first*
  checkout's bundle (so that training noise stays out of the comparison): every row of the scans table's
  current snapshot, keyed by date, AOI, tile and scene, and of ``alerts.parquet`` and ``events.parquet``,
  with the columns that name a run (``run_id``) or a path (``scene_uri``, pictures) left out; the
  summary's counts and scores.

Exit status 0 when everything is the same, 1 otherwise. A refactoring that leaves the product's
behaviour alone must pass; a change that should change outputs says so in its own words.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

RUN_SPECIFIC = {"run_id", "scene_uri", "before_image", "after_image"}


def run_demo(checkout: Path, output: Path) -> None:
    if (output / "report").exists():
        print(f"{checkout}: reusing {output}", flush=True)
        return
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = "import sys; from pipelines import demo; demo.main(sys.argv[1:])"
    subprocess.run([sys.executable, "-c", code, "--output", str(output)], cwd=checkout, env=env, check=True,
                   stdout=subprocess.DEVNULL)


#: The second checkout scans the first one's scenes with the first one's bundle, as the demo does.
RESCAN = """
import sys
from pathlib import Path
from pipelines import demo
from pipelines.analysis import report
before, dest = Path(sys.argv[1]), Path(sys.argv[2])
args = demo.build_parser().parse_args(["--output", str(dest)])
scenes = {"folders": {n: before / "scenes" / n for n in ("watch-1", "watch-2", "watch-3")},
          "aoi": before / "truth" / "watched.geojson"}
scans = demo.scan_dates(dest, scenes, before / "bundle", args)
zones = demo.write_zones(scenes["aoi"], dest / "zones.geojson")
report.run(["--scans", str(scans), "--output", str(dest / "report"), "--bundle", str(before / "bundle"),
            "--truth", str(before / "truth" / "planted.geojson"), "--zones", str(zones)])
"""
#: The first checkout trains again on its own chips with its bundle's flags.
RETRAIN = """
import json, sys
from planet_model import train
options = json.load(open(sys.argv[1]))["training"]["options"]
argv = ["--data", *options["data"], "--output", sys.argv[2], "--verbose", "0"]
for key in ("arch", "head_epochs", "finetune_epochs", "batch_size", "bands", "seed", "val_fraction", "split_by"):
    argv += [f"--{key}", str(options[key])]
train.run(argv)
"""


def run_code(checkout: Path, code: str, *argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run([sys.executable, "-c", code, *argv], cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.tif"))}


def chip_records(folder: Path) -> dict[str, tuple]:
    """Every chip of the chip sets under ``folder`` (read with this checkout's reader), by scene and tile."""
    import tensorflow as tf

    from planet_model import data, records

    found = {}
    for chip_set in sorted(p.parent for p in folder.rglob("manifest.json")):
        for raw in tf.data.TFRecordDataset(data.list_files(str(chip_set))):
            chip = records.decode(raw.numpy())
            found[f"{chip_set.name}/{chip.scene_id}/{chip.tile_id}"] = (
                hashlib.sha256(chip.image.tobytes()).hexdigest(), chip.image.shape, str(chip.image.dtype),
                tuple(chip.bands), None if chip.labels is None else tuple(np.asarray(chip.labels).tolist()), chip.crs,
                tuple(chip.transform or ()), round(chip.gsd_m or 0, 9), chip.product)
    return found


def same_value(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def rows_of(table: object, key: tuple[str, ...]) -> dict[tuple, dict]:
    rows = table.to_pylist()
    return {tuple(str(r[k]) for k in key): {k: v for k, v in r.items() if k not in RUN_SPECIFIC} for r in rows}


def compare_rows(name: str, before: dict, after: dict) -> bool:
    if before.keys() != after.keys():
        print(f"{name}: DIFFERENT keys: {len(before.keys() - after.keys())} only before, "
              f"{len(after.keys() - before.keys())} only after")
        return False
    differing = [k for k in before if any(not same_value(before[k].get(c), after[k].get(c))
                                          for c in set(before[k]) | set(after[k]))]
    if differing:
        columns = sorted({c for k in differing for c in set(before[k]) | set(after[k])
                          if not same_value(before[k].get(c), after[k].get(c))})
        print(f"{name}: DIFFERENT in {len(differing)} of {len(before)} rows (columns {', '.join(columns)})")
        return False
    print(f"{name}: same ({len(before)} rows)")
    return True


def scan_rows(output: Path) -> object:
    from pipelines.store import scans
    from pipelines.store.catalog import Warehouse

    return scans.read_arrow(Warehouse(str(output / "scans")))


def probabilities(bundle: Path, chips: Path) -> np.ndarray:
    import tensorflow as tf

    from planet_model import data, records
    from planet_model.bundle import load_model, read_metadata

    meta = read_metadata(str(bundle))
    model = load_model(str(bundle))
    images = []
    for chip_set in sorted(p.parent for p in chips.rglob("manifest.json")):
        for raw in tf.data.TFRecordDataset(data.list_files(str(chip_set))):
            chip = records.decode(raw.numpy())
            images.append(chip.image[..., [chip.bands.index(b) for b in meta.bands]].astype(np.float32))
    return model.predict(np.stack(images), verbose=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--after", default=".", help="this checkout (default: the current folder)")
    parser.add_argument("--work", default="/tmp/same-outputs", help="where both demos write")
    args = parser.parse_args()
    work = Path(args.work)
    outputs = {"before": work / "before", "after": work / "after"}
    for side, checkout in (("before", args.before), ("after", args.after)):
        run_demo(Path(checkout).resolve(), outputs[side])
    before, after = outputs["before"], outputs["after"]
    same = True
    scenes = digest(before / "scenes"), digest(after / "scenes")
    same &= scenes[0] == scenes[1]
    print(f"scenes: {'same' if scenes[0] == scenes[1] else 'DIFFERENT'} ({len(scenes[0])} files)")
    chips = chip_records(before / "chips"), chip_records(after / "chips")
    same &= compare_rows("chips", {(k,): {"chip": v} for k, v in chips[0].items()},
                         {(k,): {"chip": v} for k, v in chips[1].items()})
    repeat = work / "before-trained-again"
    if not (repeat / "bundle.json").exists():
        run_code(Path(args.before).resolve(), RETRAIN, str(before / "bundle" / "bundle.json"), str(repeat))
    metas = [json.loads(path.read_text()) for path in (before / "bundle" / "bundle.json", repeat / "bundle.json",
                                                      after / "bundle" / "bundle.json")]
    print("bundle validation F2 (searched, at 0.5): first checkout {:.4f} {:.4f}; the same code again {:.4f} {:.4f}; "
          "second checkout {:.4f} {:.4f}".format(*(m["metrics"][k] for m in metas for k in ("searched", "at_0.5"))))
    probs = [probabilities(b, after / "chips") for b in (before / "bundle", repeat, after / "bundle")]
    noise, change = float(np.abs(probs[0] - probs[1]).max()), float(np.abs(probs[0] - probs[2]).max())
    print(f"bundle probabilities on {len(probs[0])} chips: largest difference {noise:.3f} between two runs of the "
          f"first checkout's code, {change:.3f} between the checkouts"
          + (" (bit for bit the same)" if np.array_equal(probs[0], probs[2]) else ""))
    rescanned = work / "after-with-before-bundle"
    if not (rescanned / "report").exists():
        run_code(Path(args.after).resolve(), RESCAN, str(before), str(rescanned))
    key = ("scan_date", "aoi", "tile_id", "scene_id")
    same &= compare_rows("scans", rows_of(scan_rows(before), key), rows_of(scan_rows(rescanned), key))
    for name, key in (("alerts", ("alert_id",)), ("events", ("event_id",))):
        tables = [pq.read_table(side / "report" / "current" / f"{name}.parquet") for side in (before, rescanned)]
        same &= compare_rows(name, rows_of(tables[0], key), rows_of(tables[1], key))
    summaries = [json.loads((side / "report" / "current" / "summary.json").read_text()) for side in (before, rescanned)]
    figures = ("aois", "scan_dates", "rows", "tiles", "alerts", "alerts_by_confidence", "retracted", "events",
               "event_area_ha", "model_version", "truth")
    differing = [f for f in figures if summaries[0].get(f) != summaries[1].get(f)]
    same &= not differing
    verdict = "same" if not differing else "DIFFERENT in " + ", ".join(differing)
    print(f"report summary ({', '.join(figures)}): {verdict}")
    print("SAME OUTPUTS" if same else "OUTPUTS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
