"""Training recipe options the competition's users tried, each against the study's recipe on the same chips.

    python benchmarks/recipe_options.py [--arch simple_cnn] [--epochs 30] [--work /tmp/recipe_options]

Synthesises the demo's training region (two regions of 12 scenes, 384 labelled chips), then trains the
study's recipe and one variant per option with the same seed and split, one after the other: input size,
``--lr_schedule cosine`` and ``plateau``, ``--label_smoothing 0.1`` and, for a Keras application, the
other applications (``--arch_variants``). For each it prints the validation F2 at 0.5 and with searched
thresholds, the difference from the study's recipe, and the training time. An option becomes a default
only if it wins here and on real chips; on this 2-core machine the figures are for ``simple_cnn`` (the
applications take hours per run on CPUs); on a GPU run it with ``--arch inception_v3``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def variants(arch: str, sizes: list[str], extra_archs: list[str]) -> list[tuple[str, list[str]]]:
    out = [("study's recipe", [])]
    out += [(f"input {size} px", ["--input_size", size]) for size in sizes]
    out += [
        ("cosine learning rate", ["--lr_schedule", "cosine"]),
        ("plateau learning rate", ["--lr_schedule", "plateau"]),
        ("label smoothing 0.1", ["--label_smoothing", "0.1"]),
    ]
    out += [(f"--arch {other}", ["--arch", other]) for other in extra_archs]
    return out


def main() -> None:
    from pipelines import demo
    from planet_model import train

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="simple_cnn")
    p.add_argument("--arch_variants", default="", help="other archs to compare, comma-separated (e.g. resnet50)")
    p.add_argument("--weights", default="none", help="for Keras applications: imagenet, none or a local file")
    p.add_argument("--epochs", type=int, default=30, help="head epochs (and fine-tune epochs for applications)")
    p.add_argument("--sizes", help="input sizes to try, comma-separated (default 224,256; 128,256 for simple_cnn; "
                                   "'' for none: on CPUs each doubling of the side costs about 4x)")
    p.add_argument("--work", default="/tmp/recipe_options")
    args = p.parse_args()
    out = Path(args.work)
    chips = out / "chips"
    if not chips.exists():
        scenes = demo.synthesise(out, demo.build_parser().parse_args(["--output", str(out)]))
        demo.chip_training(out, scenes)
    data = str(chips / "train-*" / "chips-*.tfrecord*")
    base = ["--data", data, "--arch", args.arch, "--head_epochs", str(args.epochs), "--batch_size", "32",
            "--verbose", "0", "--seed", "0", "--weights", args.weights]
    if args.arch != "simple_cnn":
        base += ["--finetune_epochs", str(args.epochs)]
    results = []
    sizes = args.sizes if args.sizes is not None else ("128,256" if args.arch == "simple_cnn" else "224,256")
    for name, flags in variants(args.arch, [s for s in sizes.split(",") if s],
                                [a for a in args.arch_variants.split(",") if a]):
        started = time.perf_counter()
        meta = train.run([*base, *flags, "--output", str(out / "bundles" / name.replace(" ", "_"))])
        seconds = time.perf_counter() - started
        results.append((name, meta.metrics["at_0.5"], meta.metrics["searched"], seconds))
        study = results[0]
        print(f"{name:<24} F2 at 0.5 {results[-1][1]:.4f}, searched {results[-1][2]:.4f} "
              f"({results[-1][2] - study[2]:+.4f} vs the study's recipe), {seconds:.0f} s "
              f"({seconds / study[3]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
