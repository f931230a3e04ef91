"""Training throughput of Inception V3 at 140 px, batch 128: TFRecord input pipeline vs tensors in memory.

    python benchmarks/train_throughput.py [--steps 4] [--batch_size 128]

(a) feeds ``model.fit`` from the chip TFRecords through :func:`planet_model.data.dataset` (parse, band
selection, augmentation, prefetch); (b) feeds it the same number of batches already in memory. Prints
images/s of both and a/b; target >= 0.9 (the input pipeline must not be the bottleneck). Runs on
whatever devices TensorFlow sees (GPU with mixed precision when present).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--batch_size", type=int, default=128)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from pipelines import chip
    from pipelines.sources import synthetic
    from planet_model import data, losses, model
    from planet_model.architectures import FINETUNE_FROM

    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    work = tempfile.mkdtemp(prefix="train-bench-")
    scene = synthetic.write_scene(synthetic.SceneSpec(seed=1, width=2048, height=2048), os.path.join(work, "s"))
    chip.run(["--scenes", scene["scene"], "--labels", scene["truth"], "--output", os.path.join(work, "chips")])
    files = data.list_files(os.path.join(work, "chips"))
    info = data.peek(files)
    bands = ["red", "green", "blue"]
    net = model.build("inception_v3", info.shape[0], 3, 140, [500.0] * 3, [1e5] * 3, None)
    model.set_trainable_from(net, FINETUNE_FROM["inception_v3"])
    net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=losses.CooccurrenceLoss())

    pipeline = data.dataset(files, info, bands, None, args.batch_size, training=True).repeat()
    batches = [b for b in pipeline.take(args.steps + 1)]
    memory = tf.data.Dataset.from_tensor_slices(
        (tf.concat([x for x, _ in batches], 0), tf.concat([y for _, y in batches], 0))
    ).batch(args.batch_size).repeat().cache()

    def images_per_second(ds: tf.data.Dataset) -> float:
        net.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)  # warm-up: tracing, first batches
        start = time.perf_counter()
        net.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
        return args.steps * args.batch_size / (time.perf_counter() - start)

    b = images_per_second(memory)
    a = images_per_second(pipeline)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device: {device}; Inception V3 at 140 px, batch {args.batch_size}, {args.steps} steps each")
    print(f"(a) TFRecord input pipeline: {a:8.1f} images/s")
    print(f"(b) tensors in memory:       {b:8.1f} images/s")
    print(f"ratio a/b:                   {a / b:8.2f}  (target >= 0.9)")

if __name__ == "__main__":
    main()
