"""What the scan benchmarks share: synthetic scenes and an untrained (random-weight) model bundle.

Throughput and memory do not depend on what the weights learned, so the bundle is built, not trained:
the real architecture and preprocessing layers, thresholds of 0.2, saved through
:func:`planet_model.bundle.save` like a trained one.
"""

from __future__ import annotations

import json
import os

from pipelines.sources import synthetic

BANDS = ["red", "green", "blue"]


def scenes(folder: str, rows: int, cols: int, size: int, seed: int = 11) -> list[str]:
    """A ``rows x cols`` mosaic of cloud-free synthetic scenes of ``size`` px (kept in ``folder`` for the next
    run); returns the GeoTIFF paths."""
    specs = synthetic.mosaic(seed=seed, rows=rows, cols=cols, size=size, cloud_probability=0.0, haze_probability=0.0)
    paths = [os.path.join(folder, f"{spec.scene_id}.tif") for spec in specs]
    if all(os.path.exists(path) for path in paths):
        return paths
    return [synthetic.write_scene(spec, folder)["scene"] for spec in specs]


def bundle(path: str, arch: str = "inception_v3", input_size: int = 140) -> str:
    """Save a random-weight bundle of ``arch`` at ``input_size`` for 256-px uint16 RGB chips (kept at ``path``
    for the next run)."""
    kept = os.path.join(path, "bundle.json")
    if os.path.exists(kept):
        with open(kept) as f:
            meta = json.load(f)
        if (meta.get("arch"), meta.get("input_size")) == (arch, input_size):
            return os.fspath(path)
    from planet_core.labels import LABELS
    from planet_model import bundle as bundles
    from planet_model import model

    mean, variance = [1000.0] * len(BANDS), [250000.0] * len(BANDS)
    net = model.build(arch, 256, len(BANDS), input_size, mean, variance, weights=None)
    bundles.save(net, path, {
        "thresholds": {name: 0.2 for name in LABELS}, "chip_size": 256, "input_size": input_size,
        "bands": BANDS, "dtype": "uint16",
        "domain": {"gsd_m": 3.0, "product": "surface_reflectance", "dtype": "uint16", "bands": BANDS,
                   "band_ranges": {band: [0.0, 10000.0] for band in BANDS}},
        "normalization": {"mean": mean, "variance": variance}, "arch": arch,
        "training": {"note": "random weights, built by benchmarks/scan_setup.py"}, "metrics": {},
    })
    return os.fspath(path)
