"""The bundle's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from planet_core.labels import LABELS
from planet_model import thresholds


def _png(fig) -> bytes:  # noqa: ANN001
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib and its backend (0.8 s): only when a plot is drawn

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _figure(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    import matplotlib  # noqa: PLC0415 - matplotlib and its backend (0.8 s): only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib and its backend (0.8 s): only when a plot is drawn

    return plt.subplots(*args, **kwargs)


def training_curves(history: Sequence[Mapping[str, float]]) -> bytes:
    """Loss and accuracy per epoch, training and validation, both stages in one run of epochs."""
    fig, axes = _figure(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, len(history) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [h.get(prefix + key, np.nan) for h in history]
            ax.plot(epochs, values, style, label=(prefix or "train_") + key)
        stages = [h.get("stage") for h in history]
        if 2 in stages:
            ax.axvline(stages.index(2) + 0.5, color="grey", lw=0.8)
        ax.set_xlabel("epoch")
        ax.legend()
    return _png(fig)


def f2_curves(curves: np.ndarray, thresholds: np.ndarray, candidates: np.ndarray) -> bytes:
    fig, axes = _figure(3, 6, figsize=(16, 7), sharex=True, sharey=True)
    for j, ax in enumerate(axes.flat):
        if j >= len(LABELS):
            ax.axis("off")
            continue
        ax.plot(candidates, curves[j])
        ax.axvline(thresholds[j], color="red", lw=0.8)
        ax.set_title(f"{LABELS[j]} ({thresholds[j]:.2f})", fontsize=8)
    fig.supxlabel("threshold")
    fig.supylabel("mean F2")
    return _png(fig)


def cooccurrence(observed: np.ndarray, predicted: np.ndarray) -> bytes:
    """Share of chips carrying each pair of labels: ground truth beside predictions."""
    fig, axes = _figure(1, 2, figsize=(14, 6))
    for ax, matrix, title in ((axes[0], observed, "observed"), (axes[1], predicted, "predicted")):
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=max(float(matrix.max()), 1e-6))
        ax.set_xticks(range(len(LABELS)), LABELS, rotation=90, fontsize=7)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=7)
        ax.set_title(f"{title} co-occurrence")
        fig.colorbar(image, ax=ax, fraction=0.046)
    return _png(fig)


def threshold_figures(y_true: np.ndarray, probabilities: np.ndarray, cut: np.ndarray) -> dict[str, bytes]:
    """``f2_vs_threshold.png`` and ``cooccurrence.png`` of predictions at thresholds ``cut``: the plots
    training, evaluation and ensembles all write."""
    y = np.asarray(y_true, dtype=np.float32)
    predicted = thresholds.apply(probabilities, cut).astype(np.float32)
    return {"f2_vs_threshold.png": f2_curves(thresholds.f2_curves(y_true, probabilities, cut), cut,
                                             thresholds.CANDIDATES),
            "cooccurrence.png": cooccurrence(y.T @ y / len(y), predicted.T @ predicted / len(y))}
