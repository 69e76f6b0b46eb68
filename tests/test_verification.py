import numpy as np
import pytest

from lrface.eval.verification import (
    auc,
    best_threshold,
    cosine_scores,
    kfold_accuracy,
    kfold_score_accuracy,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)


def test_roc_hand_computed():
    # scores (desc): 0.9 P, 0.8 N, 0.7 P, 0.6 P, 0.5 N, 0.4 N
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    same = np.array([1, 0, 1, 1, 0, 0], bool)
    r = roc_curve(scores, same)
    assert np.allclose(r.fpr, [0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
    assert np.allclose(r.tpr, [0, 1 / 3, 1 / 3, 2 / 3, 1, 1, 1])
    # AUC = P(score_pos > score_neg) = (3 + 2 + 2) / 9
    assert auc(r) == pytest.approx(7 / 9)
    assert tar_at_far(r, 0.0) == pytest.approx(1 / 3)
    assert tar_at_far(r, 1 / 3) == pytest.approx(1.0)  # step: best TPR at exactly that FAR
    assert tar_at_far(r, 1 / 6) == pytest.approx(1 / 3 + (1 / 3 - 1 / 3) * 0.5)  # flat between
    assert tar_at_far(r, 0.5) == pytest.approx(1.0)
    assert threshold_at_far(r, 0.0) == pytest.approx(0.9)


def test_tar_interpolates_on_slopes_and_ties():
    scores = np.array([0.9, 0.5, 0.5, 0.1])  # a tie between a positive and a negative
    same = np.array([1, 1, 0, 0], bool)
    r = roc_curve(scores, same)
    assert np.allclose(r.fpr, [0, 0, 0.5, 1]) and np.allclose(r.tpr, [0, 0.5, 1, 1])
    assert tar_at_far(r, 0.25) == pytest.approx(0.75)  # halfway along the diagonal tie segment
    assert auc(r) == pytest.approx(0.875)


def test_against_scikit_learn_on_random_scores():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for n in (50, 1000, 10640):
        same = rng.random(n) < 0.5
        scores = np.round(rng.normal(same * 1.0, 1.0), 2)  # rounding makes ties
        r = roc_curve(scores, same)
        fpr, tpr, th = sk.roc_curve(same, scores, drop_intermediate=False)
        assert np.allclose(r.fpr, fpr) and np.allclose(r.tpr, tpr)
        assert auc(r) == pytest.approx(sk.roc_auc_score(same, scores), abs=1e-12)
        for far in (0.3, 0.1, 0.01, 0.001):
            expected = tpr[fpr == far].max() if (fpr == far).any() else np.interp(far, fpr, tpr)
            assert tar_at_far(r, far) == pytest.approx(float(expected), abs=1e-12)


def test_best_threshold_is_mean_of_optimal_grid_points():
    scores = np.array([0.1, 0.2, 0.6, 0.7])
    same = np.array([0, 0, 1, 1], bool)
    th = best_threshold(scores, same)
    # any t in [0.2, 0.6) separates perfectly -> mean of grid points 0.2 .. 0.5999
    assert th == pytest.approx((0.2 + 0.5999) / 2, abs=1e-4)


def test_thresholds_come_from_the_other_folds_not_the_test_fold():
    """Fold 0's genuine pairs score around 0.2, every other fold's around 0.8 (impostors around
    0.0 and 0.6): a threshold picked on folds 1-9 (about 0.7) rejects all of fold 0's genuine pairs
    and accepts none of its impostors, so fold 0 scores exactly 50 %. A threshold picked on the
    test fold itself would score 100 % there."""
    folds = np.repeat(np.arange(10), 20)
    same = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 10)
    scores = np.where(same, 0.8, 0.6)
    scores[folds == 0] = np.where(same[folds == 0], 0.2, 0.0)
    res = kfold_score_accuracy(scores, same, folds)
    assert res.accuracies[0] == pytest.approx(0.5)
    assert np.all(res.accuracies[1:] == 1.0)
    assert 0.6 < res.thresholds[0] < 0.8  # picked where folds 1-9 separate


def test_kfold_accuracy_separable_and_random():
    rng = np.random.default_rng(1)
    n = 600
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    folds = np.repeat(np.arange(10), 60)
    a = rng.normal(size=(n, 16))
    b = np.where(same[:, None], a + 0.1 * rng.normal(size=(n, 16)), rng.normal(size=(n, 16)))
    res = kfold_accuracy(a, b, same, folds)
    assert res.mean == 1.0 and res.accuracies.shape == (10,)
    noise = kfold_accuracy(a, rng.normal(size=(n, 16)), same, folds)
    assert 0.35 < noise.mean < 0.65
    sres = kfold_score_accuracy(cosine_scores(a, b), same, folds)
    assert sres.mean > 0.95
