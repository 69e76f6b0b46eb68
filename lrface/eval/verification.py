"""Face verification metrics: 10-fold accuracy (LFW recipe), ROC, AUC and TAR at FAR.

10-fold accuracy: for each test fold the threshold is the mean of the best thresholds on a grid
over [-1, 1] (step 1e-4), picked on the 9 other folds, and accuracy is measured on the test fold.
Pairs are scored by plain cosine, as ``lrface verify``, the ROC and the published thresholds do
(and as SR_LRFR's evaluation does): the primary figure. ``subtract_mean=True`` is the
MobileFaceNet authors' recipe instead (subtract the mean feature of the 9 training folds, then
cosine), reported beside it so the seed paper's numbers can be compared too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLD_GRID = np.round(np.arange(-1.0, 1.0 + 1e-9, 1e-4), 4)


@dataclass(frozen=True)
class Roc:
    """ROC over all pairs: false/true accept rates at each distinct score threshold (descending)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def roc_curve(scores: np.ndarray, same: np.ndarray) -> Roc:
    """Accept when ``score >= threshold``; points for every distinct score, starting at (0, 0)."""
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both same and different pairs")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], same[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    return Roc(
        fpr=np.r_[0.0, fp / n_neg],
        tpr=np.r_[0.0, tp / n_pos],
        thresholds=np.r_[np.inf, s[last]],
    )


def auc(roc: Roc) -> float:
    """Area under the ROC (trapezoids; ties handled as in scikit-learn's roc_auc_score)."""
    return float(np.trapezoid(roc.tpr, roc.fpr))


def tar_at_far(roc: Roc, far: float) -> float:
    """True accept rate at a false accept rate, linearly interpolated between ROC points.

    Where several points share ``fpr == far`` the highest TPR is taken (the ROC is a step
    function there); between points, linear interpolation on the convex segment.
    """
    fpr, tpr = roc.fpr, roc.tpr
    if far <= 0:
        return float(tpr[fpr <= 0].max())
    if far >= 1:
        return 1.0
    exact = fpr == far
    if exact.any():
        return float(tpr[exact].max())
    i = int(np.searchsorted(fpr, far, side="right"))  # fpr[i-1] < far < fpr[i]
    f0, f1, t0, t1 = fpr[i - 1], fpr[i], tpr[i - 1], tpr[i]
    return float(t0 + (t1 - t0) * (far - f0) / (f1 - f0))


def _accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(((scores > threshold) == same).mean())


def best_threshold(scores: np.ndarray, same: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> float:
    """Mean of the grid thresholds that maximise accuracy (``accept: score > t``)."""
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # accuracy at threshold t: different pairs with s <= t plus same pairs with s > t
    idx = np.searchsorted(s, grid, side="right")  # how many scores <= t
    neg_below = np.r_[0, np.cumsum(~y)][idx]
    pos_above = y.sum() - np.r_[0, np.cumsum(y)][idx]
    correct = neg_below + pos_above
    return float(grid[correct == correct.max()].mean())


@dataclass(frozen=True)
class FoldResult:
    accuracies: np.ndarray
    thresholds: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())


def _kfold(score_fn, same: np.ndarray, folds: np.ndarray) -> FoldResult:
    """Threshold on the other folds, accuracy on each fold; ``score_fn(train_mask)`` scores all pairs."""
    same = np.asarray(same, bool)
    folds = np.asarray(folds)
    if len(np.unique(folds)) < 2:
        raise ValueError("k-fold accuracy needs at least 2 folds (thresholds come from the others)")
    accs, ths = [], []
    for k in np.unique(folds):
        test, train = folds == k, folds != k
        scores = score_fn(train)
        th = best_threshold(scores[train], same[train])
        accs.append(_accuracy(scores[test], same[test], th))
        ths.append(th)
    return FoldResult(np.array(accs), np.array(ths))


def kfold_accuracy(
    feat_a: np.ndarray,
    feat_b: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    subtract_mean: bool = False,
) -> FoldResult:
    """10-fold verification accuracy by plain cosine, or by the authors' mean-subtraction recipe
    (see the module docstring)."""

    def scores(train: np.ndarray) -> np.ndarray:
        if not subtract_mean:
            return cosine_scores(feat_a, feat_b)
        mu = np.concatenate([feat_a[train], feat_b[train]]).mean(0, keepdims=True)
        return cosine_scores(feat_a - mu, feat_b - mu)

    return _kfold(scores, same, folds)


def cosine_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return (a * b).sum(1)


def kfold_score_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> FoldResult:
    """10-fold accuracy from precomputed scores (threshold on 9 folds, tested on the 10th)."""
    scores = np.asarray(scores, np.float64)
    return _kfold(lambda _train: scores, same, folds)


def threshold_at_far(roc: Roc, far: float) -> float:
    """The highest-TPR score threshold whose false accept rate is at most ``far``."""
    ok = np.nonzero(roc.fpr <= far)[0]
    return float(roc.thresholds[ok[-1]])
