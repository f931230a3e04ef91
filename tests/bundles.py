"""Small real bundles for tests that need a model, not a trained one: an untrained simple CNN saved through
:func:`planet_model.bundle.save`, as training saves one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from planet_core.labels import LABELS
from planet_model import bundle, model


def tiny(folder: Path | str, *, chip_size: int = 32, input_size: int = 32,
         bands: Sequence[str] = ("red", "green", "blue"), dtype: str = "uint8", product: str = "visual",
         mean: float = 100.0, variance: float = 400.0, thresholds: Mapping[str, float] | None = None,
         band_ranges: Mapping[str, Sequence[float]] | None = None, gain: float = 1.0,
         files: Mapping[str, bytes] = {}):
    """``(model, meta)`` of an untrained simple CNN saved as a bundle in ``folder``: its answers still depend
    on every band and pixel it reads (``gain`` scales its last layer: probabilities far from 0.5, so that
    other inputs change the tags). ``thresholds``: 0.5 for every label unless given; ``band_ranges``: none
    unless given; ``files``: saved beside it, as training saves its plots."""
    n = len(bands)
    net = model.build("simple_cnn", chip_size, n, input_size, [mean] * n, [variance] * n)
    last = net.layers[-1]
    last.set_weights([w * gain for w in last.get_weights()])
    meta = bundle.save(net, str(folder), {
        "thresholds": dict(thresholds or {name: 0.5 for name in LABELS}), "chip_size": chip_size,
        "input_size": input_size, "bands": list(bands), "dtype": dtype,
        "normalization": {"mean": [mean] * n, "variance": [variance] * n},
        "domain": {"gsd_m": 3.0, "product": product, "dtype": dtype, "bands": list(bands),
                   "band_ranges": {b: list(r) for b, r in (band_ranges or {}).items()}},
        "arch": "simple_cnn", "training": {}, "metrics": {}}, files)
    return net, meta
