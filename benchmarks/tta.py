"""Test-time augmentation: what it gains in F2 on held-out chips and what it costs in scan tiles/s.

    python benchmarks/tta.py [--work /tmp/recipe_options] [--epochs 30] [--tiles 512]

Uses the demo's synthetic regions (made by ``benchmarks/recipe_options.py`` in the same ``--work``
folder, or here): trains the study's recipe on the training region (``simple_cnn`` on this CPU machine),
builds its TTA bundle (``planet-tiles ensemble --tta``, thresholds searched on the same validation
split), and evaluates both on chips of the watched region, which no training saw (two acquisitions,
clear and otherwise). Then times the two models side by side on the same ``--tiles`` 256-px tiles in
batches of 64, as the scan calls them, and prints tiles/s of both and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from pipelines import chip, demo
    from planet_model import bundle, ensemble, evaluate, train

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/recipe_options")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--tiles", type=int, default=512)
    args = p.parse_args()
    out = Path(args.work)
    if not (out / "chips").exists():
        scenes = demo.synthesise(out, demo.build_parser().parse_args(["--output", str(out)]))
        demo.chip_training(out, scenes)
    held_out = out / "held-out"
    if not held_out.exists():
        for name in ("watch-1", "watch-3"):
            folder = out / "scenes" / name
            chip.run(["--scenes", str(folder / "*.tif"), "--labels", str(folder / "truth.geojson"),
                      "--output", str(held_out / name)])
    data = str(out / "chips" / "train-*" / "chips-*.tfrecord*")
    plain = out / "bundles" / "tta-plain"
    if not (plain / "bundle.json").exists():
        train.run(["--data", data, "--output", str(plain), "--arch", "simple_cnn", "--head_epochs", str(args.epochs),
                   "--batch_size", "32", "--verbose", "0", "--seed", "0"])
    tta = out / "bundles" / "tta-on"
    ensemble.run(["--bundle", str(plain), "--data", data, "--tta", "--output", str(tta)])
    report = evaluate.run(["--bundle", str(plain), "--bundle", str(tta), "--data",
                           str(held_out / "*" / "chips-*.tfrecord*"), "--output", str(out / "tta-eval")])
    for r in report["bundles"]:
        f2 = r["mean_f2"]
        print(f"{'with TTA' if r['tta'] else 'without TTA':<12} held-out chips {r['chips']}: F2 at the bundle's "
              f"thresholds {f2['bundle_thresholds']:.4f}, at 0.5 {f2['at_0.5']:.4f}, with weather-one "
              f"{f2['bundle_thresholds_weather_one']:.4f}", flush=True)
    models = {name: bundle.load_model(str(path)) for name, path in (("without TTA", plain), ("with TTA", tta))}
    tiles = np.random.default_rng(0).integers(0, 255, (args.tiles, 256, 256, 3)).astype(np.float32)
    rates = {}
    for name, model in models.items():
        model.predict_on_batch(tiles[:64])  # warm-up
        started = time.perf_counter()
        for i in range(0, len(tiles), 64):
            model.predict_on_batch(tiles[i:i + 64])
        rates[name] = len(tiles) / (time.perf_counter() - started)
    print(f"model calls: {rates['without TTA']:.1f} tiles/s without TTA, {rates['with TTA']:.1f} with; "
          f"ratio {rates['with TTA'] / rates['without TTA']:.3f}")


if __name__ == "__main__":
    main()
