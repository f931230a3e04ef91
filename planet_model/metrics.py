"""F2 as the competition scored it, and per-label figures. NumPy only.

F-beta with beta = 2 weighs recall four times as much as precision. The competition computed it per
chip and averaged over chips, which equals scikit-learn's
``fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=0)``.
"""

from __future__ import annotations

import numpy as np

from planet_core.labels import LABELS

BETA2 = 4.0  # beta squared


def f2_per_sample(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """F2 of each row of 0/1 matrices; a row with nothing true and nothing predicted scores 0."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=1)
    fp = (~y_true & y_pred).sum(axis=1)
    fn = (y_true & ~y_pred).sum(axis=1)
    return _f2(tp, fp, fn)


def _f2(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    numerator = (1 + BETA2) * tp
    denominator = numerator + BETA2 * fn + fp
    return np.divide(numerator, denominator, out=np.zeros(np.shape(tp), dtype=np.float64), where=denominator > 0)


def mean_f2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The competition's score: F2 per chip, averaged over chips."""
    return float(f2_per_sample(y_true, y_pred).mean())


def per_label(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall, F2 and support of each label (columns in :data:`LABELS` order)."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(tp)), where=(tp + fn) > 0)
    f2 = _f2(tp, fp, fn)
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f2": float(f2[i]),
               "support": int(tp[i] + fn[i])}
        for i, name in enumerate(LABELS[: y_true.shape[1]])
    }
