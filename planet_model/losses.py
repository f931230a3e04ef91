"""Binary cross-entropy plus the study's label co-occurrence penalty.

    L = BCE + alpha * L_c,   C_y = y_p^T y_p (17 x 17, summed over the batch),   L_c = sum(C_y * C_o)

``C_o`` marks label pairs that should not co-occur. The study's default covers the weather labels only
(off-diagonal 1 among clear, cloudy, haze, partly_cloudy); :func:`penalty_from_labels` derives it from
training labels instead (1 for every pair never seen together).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from planet_core.labels import NUM_LABELS, WEATHER_INDICES


def weather_penalty() -> np.ndarray:
    """The study's ``C_o``: weather labels must not co-occur."""
    penalty = np.zeros((NUM_LABELS, NUM_LABELS), dtype=np.float32)
    for i in WEATHER_INDICES:
        for j in WEATHER_INDICES:
            if i != j:
                penalty[i, j] = 1.0
    return penalty


def penalty_from_labels(y: np.ndarray) -> np.ndarray:
    """``C_o`` with 1 for every pair of distinct labels that never occur together in ``y`` (0/1 rows)."""
    y = np.asarray(y, dtype=np.float32)
    together = y.T @ y
    penalty = (together == 0).astype(np.float32)
    np.fill_diagonal(penalty, 0.0)
    return penalty


@keras.saving.register_keras_serializable(package="planet_model")
class CooccurrenceLoss(keras.losses.Loss):
    """``BCE + weight * sum((y_p^T y_p) * penalty)``; the cross-entropy's targets smoothed towards 0.5 by
    ``label_smoothing`` (0: off, the study)."""

    def __init__(self, weight: float = 1e-4, penalty: list | np.ndarray | None = None,
                 name: str = "bce_cooccurrence", label_smoothing: float = 0.0, **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.weight = float(weight)
        self.label_smoothing = float(label_smoothing)
        self.penalty = np.asarray(weather_penalty() if penalty is None else penalty, dtype=np.float32)

    def call(self, y_true, y_pred):  # noqa: ANN001, ANN201 - Keras tensors
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing))
        cooccurrence = ops.matmul(ops.transpose(y_pred), y_pred)
        return bce + self.weight * ops.sum(cooccurrence * ops.convert_to_tensor(self.penalty))

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight, "penalty": self.penalty.tolist(),
                "label_smoothing": self.label_smoothing}
