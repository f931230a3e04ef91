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

    from planet_core.labels import LABELS

    rng = np.random.default_rng(5)
    y = (rng.random((80, len(LABELS))) < 0.3).astype(np.int64)
    pred = np.where(rng.random(y.shape) < 0.8, y, 1 - y).astype(np.int64)
    pred[:, 0] = 0  # a label never predicted: precision 0 by convention
    figures = metrics.per_label(y, pred)
    precision, recall, f2, support = precision_recall_fscore_support(y, pred, beta=2, average=None, zero_division=0)
    for i, name in enumerate(LABELS):
        assert figures[name] == pytest.approx({"precision": precision[i], "recall": recall[i], "f2": f2[i],
                                               "support": support[i]}), name


def test_float_labels_as_the_records_hold_them_score_like_booleans():
    """Labels come out of the TFRecords as float32 0/1: every function treats them as the booleans they are."""
    rng = np.random.default_rng(7)
    y = rng.random((50, 17)) < 0.3
    probs = np.clip(y * 0.5 + rng.random(y.shape) * 0.6, 0, 1)
    pred = probs >= 0.5
    as_float = y.astype(np.float32), pred.astype(np.float32)
    assert metrics.mean_f2(*as_float) == metrics.mean_f2(y, pred)
    assert metrics.per_label(*as_float) == metrics.per_label(y, pred)
    assert np.array_equal(thresholds.search(as_float[0], probs)[0], thresholds.search(y, probs)[0])
    base = np.full(17, 0.4)
    assert np.array_equal(thresholds.f2_curves(as_float[0], probs, base), thresholds.f2_curves(y, probs, base))


def test_per_label_on_a_hand_worked_case():
    """Label 0: tp 1, fp 2, fn 3. Label 1: tp 2, fp 1, fn 1. Label 2: never true, never predicted."""
    y_true = np.zeros((7, 3), bool)
    y_pred = np.zeros((7, 3), bool)
    y_true[[0, 3, 4, 5], 0] = True
    y_pred[[0, 1, 2], 0] = True
    y_true[[0, 1, 6], 1] = True
    y_pred[[0, 1, 2], 1] = True
    figures = metrics.per_label(y_true, y_pred)
    assert list(figures) == ["agriculture", "artisinal_mine", "bare_ground"]  # the first three labels
    assert figures["agriculture"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 4,
                                                     "f2": 5 * 1 / (5 * 1 + 4 * 3 + 2), "support": 4})
    assert figures["artisinal_mine"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3,
                                                        "f2": 5 * 2 / (5 * 2 + 4 * 1 + 1), "support": 3})
    assert figures["bare_ground"] == {"precision": 0.0, "recall": 0.0, "f2": 0.0, "support": 0}  # not NaN


def test_search_keeps_the_start_when_nothing_beats_it():
    """Every label's probabilities sit between 0.1 and 0.2 or at 0.9 and above: 0.2 is already best, and
    the cuts that tie with it (0.11 .. 0.2) do not move the search (ties keep the current threshold)."""
    rng = np.random.default_rng(8)
    y = rng.random((40, 17)) < 0.4
    probs = np.where(y, rng.uniform(0.9, 1.0, y.shape), rng.uniform(0.1, 0.109, y.shape))
    found, score = thresholds.search(y, probs)
    assert np.array_equal(found, np.full(17, 0.2))
    assert score == metrics.mean_f2(y, y)


def test_the_score_search_reports_is_what_its_thresholds_give():
    """Probabilities exactly on the candidate grid (0.25, 0.5, 0.75, exact in binary): a label is on at
    its threshold, in the search as in :func:`thresholds.apply`."""
    rng = np.random.default_rng(9)
    y = rng.random((200, 17)) < 0.3
    probs = np.where(y, rng.choice([0.5, 0.75], y.shape), rng.choice([0.25, 0.5], y.shape)).astype(np.float32)
    found, score = thresholds.search(y, probs)
    assert score == pytest.approx(metrics.mean_f2(y, thresholds.apply(probs, found)), abs=1e-12)


def test_the_search_stops_only_where_no_single_label_can_gain():
    """Coordinate ascent's fixed point: with the others held, no candidate for any one label raises mean F2.
    Labels interact through each chip's F2, so one pass is not enough here."""
    rng = np.random.default_rng(10)
    y = rng.random((300, 17)) < rng.uniform(0.05, 0.6, 17)
    probs = np.clip(y * rng.uniform(0.2, 0.5, 17) + rng.random(y.shape) * 0.6, 0, 1)
    found, score = thresholds.search(y, probs)
    curves = thresholds.f2_curves(y, probs, found)
    assert curves.max() <= score + 1e-9
    one_round, _ = thresholds.search(y, probs, max_rounds=1)
    assert (
        thresholds.f2_curves(y, probs, one_round).max() > metrics.mean_f2(y, thresholds.apply(probs, one_round)) + 1e-9
    )


def test_a_probability_equal_to_its_threshold_is_on_in_the_search_and_in_apply():
    """Positives at exactly 0.5 and negatives at 0.495: the first perfect cut is 0.5 itself, so the search
    must count a probability equal to the threshold as on, as :func:`thresholds.apply` does."""
    rng = np.random.default_rng(11)
    y = rng.random((100, 17)) < 0.3
    probs = np.where(y, 0.5, 0.495).astype(np.float32)
    found, score = thresholds.search(y, probs)
    assert np.array_equal(found, np.full(17, 0.5))
    assert score == metrics.mean_f2(y, thresholds.apply(probs, found)) == metrics.mean_f2(y, y)
