import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import fbeta_score

from planet_model import metrics, thresholds


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.just(17))), st.integers(0, 2**32 - 1))
def test_mean_f2_equals_scikit_learn(y_true, seed):
    y_pred = np.random.default_rng(seed).random(y_true.shape) < 0.3
    expected = fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=0)
    assert metrics.mean_f2(y_true, y_pred) == pytest.approx(expected)


def test_edge_cases():
    ones, zeros = np.ones((3, 17), bool), np.zeros((3, 17), bool)
    assert metrics.mean_f2(ones, ones) == 1.0
    assert metrics.mean_f2(ones, zeros) == 0.0
    assert metrics.mean_f2(zeros, zeros) == fbeta_score(zeros, zeros, beta=2, average="samples", zero_division=0)
    y_true = np.array([[1, 0] + [0] * 15])
    y_pred = np.array([[1, 1] + [0] * 15])
    assert metrics.mean_f2(y_true, y_pred) == pytest.approx(5 / 6)  # precision 1/2, recall 1
    figures = metrics.per_label(y_true, y_pred)
    assert figures["agriculture"] == {"precision": 1.0, "recall": 1.0, "f2": 1.0, "support": 1}
    assert figures["artisinal_mine"]["precision"] == 0.0 and figures["artisinal_mine"]["support"] == 0


def _planted(n=3000, seed=0):
    """Probabilities where each label's best cut is known: true chips score above cut[j] + 0.02."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, 17)) < rng.uniform(0.05, 0.5, 17)
    cut = np.round(rng.uniform(0.1, 0.8, 17), 2)
    probs = np.where(y, rng.uniform(cut + 0.02, 1.0, (n, 17)), rng.uniform(0.0, cut - 0.02, (n, 17)))
    return y, probs, cut


def test_search_finds_a_planted_optimum_and_never_loses_to_fixed_cuts():
    y, probs, cut = _planted()
    found, score = thresholds.search(y, probs)
    assert score == pytest.approx(y.any(axis=1).mean())  # perfect, but a chip with no label scores 0
    assert np.all((found >= cut - 0.02 - 1e-9) & (found <= cut + 0.02 + 1e-9))
    rng = np.random.default_rng(1)
    noisy = np.clip(probs + rng.normal(0, 0.25, probs.shape), 0, 1)
    found, score = thresholds.search(y, noisy)
    assert score == pytest.approx(metrics.mean_f2(y, thresholds.apply(noisy, found)))
    assert score >= metrics.mean_f2(y, noisy >= 0.5) and score >= metrics.mean_f2(y, noisy >= 0.2)


def test_search_on_a_full_validation_set_size_finds_the_planted_cuts():
    """At the study's validation size (12,144 chips; the speed is a benchmark concern, not a test's):
    labels whose true probability sits above a known cut are found at that cut."""
    rng = np.random.default_rng(2)
    y = rng.random((12_144, 17)) < 0.17
    cuts = np.round(np.linspace(0.1, 0.6, 17), 2)  # on the search's 0.01 grid
    probs = np.where(y, cuts + rng.random((12_144, 17)) * (1 - cuts), rng.random((12_144, 17)) * cuts)
    found, score = thresholds.search(y, probs)
    perfect = metrics.mean_f2(y, y)  # below 1: chips without any label score 0, as in scikit-learn
    assert score == pytest.approx(perfect) and metrics.mean_f2(y, probs >= 0.5) < perfect
    assert np.allclose(found, cuts)


def test_f2_curves_vary_one_label_at_a_time_against_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.random((60, 4)) < 0.4
    p = np.clip(y * 0.6 + rng.random((60, 4)) * 0.5, 0, 1)
    base = np.array([0.3, 0.4, 0.5, 0.6])
    candidates = np.array([0.1, 0.5, 0.9])
    curves = thresholds.f2_curves(y, p, base, candidates)
    assert curves.shape == (4, 3)
    for j in range(4):
        for k, t in enumerate(candidates):
            cut = base.copy()
            cut[j] = t
            expected = fbeta_score(y, p >= cut, beta=2, average="samples", zero_division=0)
            assert curves[j, k] == pytest.approx(expected), (j, t)


def test_per_label_figures_equal_scikit_learn_on_0_1_integer_arrays():
    from sklearn.metrics import precision_recall_fscore_support

    from planet_model.labels import LABELS

    rng = np.random.default_rng(5)
    y = (rng.random((80, len(LABELS))) < 0.3).astype(np.int64)
    pred = np.where(rng.random(y.shape) < 0.8, y, 1 - y).astype(np.int64)
    pred[:, 0] = 0  # a label never predicted: precision 0 by convention
    figures = metrics.per_label(y, pred)
    precision, recall, f2, support = precision_recall_fscore_support(y, pred, beta=2, average=None, zero_division=0)
    for i, name in enumerate(LABELS):
        assert figures[name] == pytest.approx({"precision": precision[i], "recall": recall[i], "f2": f2[i],
                                               "support": support[i]}), name
