"""Images/s of the models' training step and inference on tensors in memory: float32 vs mixed precision.

    python benchmarks/model_throughput.py [--archs inception_v3,simple_cnn] [--batch_size 128] [--steps 8]
    KERAS_BACKEND=jax python benchmarks/model_throughput.py      # where TensorFlow is not installed

For each architecture at its default input size, prints the images/s of a stage-2 training step (the
study's long stage: base trainable from its fine-tuning layer, SGD with momentum, the co-occurrence loss)
and of inference (``predict``, what the scan spends its model time on), under float32 and under the
``mixed_float16`` policy the trainer sets on GPUs, and the ratios mixed / float32. Batches are already in
memory, so this is the model's ceiling on the device; ``train_throughput.py`` says whether the TFRecord
input pipeline keeps up with it, and ``scan_throughput.py`` what a whole scan reaches.

The timed model starts after the bundle model's area resize (``layers.Resizing(interpolation="area")``),
which only TensorFlow implements, and is fed chips already at the input size: that lets the same script
run on any Keras 3 backend (JAX or PyTorch on a GPU machine without TensorFlow) and measure the same
layers there. The resize of a 256-px chip is a small part of the cost.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="inception_v3,simple_cnn", help="comma-separated architectures")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed batches per measurement (after a warm-up)")
    args = parser.parse_args()
    import keras

    from planet_model import losses, model
    from planet_model.architectures import ARCHS, DEFAULT_INPUT_SIZE, FINETUNE_FROM

    archs = args.archs.split(",")
    unknown = sorted(set(archs) - set(ARCHS))
    if unknown:
        parser.error(f"--archs: unknown {', '.join(unknown)}; choose from {', '.join(ARCHS)}")
    print(f"backend: {keras.backend.backend()}; devices: {_devices(keras.backend.backend())}; "
          f"batch {args.batch_size}, {args.steps} timed batches per figure")
    print(f"{'arch':<14}{'policy':<16}{'train img/s':>12}{'infer img/s':>12}")
    for arch in archs:
        size = DEFAULT_INPUT_SIZE[arch]
        rng = np.random.default_rng(0)
        n = args.batch_size * args.steps
        x = rng.normal(size=(n, size, size, 3)).astype("float32")
        y = (rng.uniform(size=(n, 17)) > 0.7).astype("float32")
        figures = {}
        for policy in ("float32", "mixed_float16"):
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(0)
            full = model.build(arch, 256, 3, size, [0.0] * 3, [1.0] * 3, None)
            net = keras.Model(full.get_layer("resize").output, full.output, name=f"{arch}_from_resize")
            model.set_trainable_from(net, FINETUNE_FROM.get(arch))
            net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=losses.CooccurrenceLoss())
            train = _rate(functools.partial(net.fit, x, y, batch_size=args.batch_size, epochs=1, verbose=0), n)
            infer = _rate(functools.partial(net.predict, x, batch_size=args.batch_size, verbose=0), n)
            figures[policy] = (train, infer)
            print(f"{arch:<14}{policy:<16}{train:12.1f}{infer:12.1f}", flush=True)
            keras.backend.clear_session()
        (t32, i32), (t16, i16) = figures["float32"], figures["mixed_float16"]
        print(f"{arch:<14}{'mixed / float32':<16}{t16 / t32:11.2f}x{i16 / i32:11.2f}x", flush=True)
    keras.mixed_precision.set_global_policy("float32")


def _rate(run, images: int) -> float:
    """Images/s of the second of two runs (the first compiles and warms up)."""
    run()
    start = time.perf_counter()
    run()
    return images / (time.perf_counter() - start)


def _devices(backend: str) -> str:
    if backend == "jax":
        import jax

        return ", ".join(d.device_kind for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return ", ".join(d.name for d in tf.config.list_logical_devices()) or "cpu"


if __name__ == "__main__":
    main()
