"""A Beam ``ModelHandler`` for model bundles: loads ``model.keras`` once per worker and predicts batches.

Beam 2.77's built-in TensorFlow handler needs tensorflow_hub and cannot load Keras 3 files; this one
calls :func:`planet_model.bundle.load_model` (safe mode) and ``predict_on_batch``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult


def _drop_memory_warning(record: logging.LogRecord) -> bool:
    # Beam 2.77's RunInference imports `resource` together with a module that needs PyTorch; without
    # PyTorch it logs "Resource module is not available" on every bundle. The figure it wants is only a
    # metric, so the line is noise for users of this handler.
    return not record.getMessage().startswith("Resource module is not available")


logging.getLogger().addFilter(_drop_memory_warning)


class BundleModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """Chips ``(chip_size, chip_size, bands)`` in, 17 probabilities out."""

    def __init__(self, bundle_path: str, batch_size: int = 64) -> None:
        super().__init__()
        self.bundle_path, self.batch_size = bundle_path, batch_size

    def load_model(self) -> Any:
        from planet_model import bundle

        return bundle.load_model(self.bundle_path)

    def run_inference(self, batch: Sequence[np.ndarray], model: Any,
                      inference_args: dict | None = None) -> Iterable[PredictionResult]:
        stacked = np.stack(batch).astype(np.float32, copy=False)
        probabilities = np.asarray(model.predict_on_batch(stacked))
        return [PredictionResult(example, p) for example, p in zip(batch, probabilities)]

    def batch_elements_kwargs(self) -> dict:
        # Full batches from the start: BatchElements' adaptive sizing would begin at one tile per model
        # call and grow, which costs a large share of a scan on a CPU. A bundle's last batch may be short.
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def get_metrics_namespace(self) -> str:
        return "planet_tiles_bundle"
