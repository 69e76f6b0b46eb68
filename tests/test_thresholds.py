"""Which measured threshold decides a verification: one face small, both small, both large."""

import numpy as np
import pytest

from lrface.inference import FaceEmbedding, FaceVerifier, InferenceError, thresholds_from_metrics


def _face(size: str) -> FaceEmbedding:
    return FaceEmbedding("x.png", [], 0, "direct" if size == "112x96" else "srnet", size, np.ones(256, np.float32))


METRICS = {"lfw": {
    "hr": {"thr_far1e-3_112x96": 0.30, "acc_112x96": 0.99},
    "lrface-srnet v2 (alpha=0.5)": {"thr_far1e-3_14x12": 0.31, "thr_far1e-3_7x6": 0.28,
                                    "thr_far1e-3_14x12-14x12": 0.45, "thr_far1e-3_7x6-7x6": 0.52,
                                    "thr_far1e-2_14x12": 0.2},
}}


def test_thresholds_from_metrics_keep_both_low_cells():
    thr = thresholds_from_metrics(METRICS, "lrface-srnet v2 (alpha=0.5)", 1e-3)
    assert thr == {"112x96": 0.30, "14x12": 0.31, "7x6": 0.28, "14x12-14x12": 0.45, "7x6-7x6": 0.52}


@pytest.mark.parametrize(("a", "b", "want"), [
    ("112x96", "112x96", ("112x96", 0.30)),
    ("14x12", "112x96", ("14x12", 0.31)),        # the paper's protocol: probe vs sharp gallery
    ("112x96", "7x6", ("7x6", 0.28)),
    ("14x12", "14x12", ("14x12-14x12", 0.45)),   # both from footage: the both-low calibration
    ("7x6", "14x12", ("7x6-7x6", 0.52)),         # mixed: the lower resolution decides
])
def test_threshold_for_picks_the_protocol_of_the_pair(a, b, want):
    v = FaceVerifier(None, None, thresholds=thresholds_from_metrics(METRICS, "lrface-srnet v2 (alpha=0.5)", 1e-3))
    thr, size = v.threshold_for(_face(a), _face(b))
    assert (size, thr) == want


def test_missing_calibration_is_an_error_not_a_borrowed_threshold():
    v = FaceVerifier(None, None, thresholds={"112x96": 0.3, "28x24": 0.3})
    with pytest.raises(InferenceError, match="28x24-28x24"):
        v.threshold_for(_face("28x24"), _face("28x24"))
