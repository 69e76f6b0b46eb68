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


def test_surveillance_thresholds_come_from_their_own_section_and_hr_from_the_clean_one():
    metrics = {**METRICS, "lfw_surv": {"lrface-srnet v2 (alpha=0.5)": {"thr_far1e-3_14x12": 0.41,
                                                                      "thr_far1e-3_14x12-14x12": 0.55}}}
    thr = thresholds_from_metrics(metrics, "lrface-srnet v2 (alpha=0.5)", 1e-3, "lfw_surv")
    assert thr == {"112x96": 0.30, "14x12": 0.41, "14x12-14x12": 0.55}
    assert thresholds_from_metrics(METRICS, "lrface-srnet v2 (alpha=0.5)", 1e-3, "lfw_surv") == {"112x96": 0.30}


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


def _result(method: str, size: str, genuine: float, impostor: float):
    """An evaluation cell whose ROC puts the 0.1 % FAR threshold just above ``impostor``."""
    from lrface.eval.lfw import Result
    from lrface.eval.verification import roc_curve

    same = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    scores = np.r_[np.full(50, genuine), np.linspace(impostor - 0.2, impostor, 50)]
    return Result(method, size, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, [1.0], roc_curve(scores, same))


def test_verify_reads_the_thresholds_evaluation_logged_to_mlflow_else_metrics_json(tmp_path, frnet_ckpt):
    """Thresholds as evaluation writes them (its own MLflow logger, its own metrics.json), read back
    by the loader ``lrface verify`` uses, with no --threshold."""
    import json

    from lrface.config import load_params
    from lrface.eval.registry import log_evaluation
    from lrface.eval.report import metrics_by_protocol
    from lrface.inference import load_verifier
    from lrface.tracking import setup_mlflow
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml", {"paths.work_dir": str(tmp_path), "paths.frnet_checkpoint":
                                                 str(frnet_ckpt)})
    results = [_result("hr", "112x96", 0.85, 0.25), _result("bicubic", "14x12", 0.9, 0.4),
               _result("bicubic", "14x12-14x12", 0.95, 0.8)]
    # no evaluation anywhere: nothing to decide with
    assert load_verifier(params, None).thresholds == {}
    # metrics.json only (e.g. the work dir pulled by dvc, no tracking server): read from it
    (tmp_path / "metrics.json").write_text(json.dumps(metrics_by_protocol(results)))
    from_file = load_verifier(params, None).thresholds
    # at 0.1 % FAR over 50 impostors no impostor may pass: the threshold is the genuine score
    assert from_file == pytest.approx({"112x96": 0.85, "14x12": 0.9, "14x12-14x12": 0.95})
    # the runs evaluation logs to MLflow take precedence over the file
    (tmp_path / "metrics.json").write_text(json.dumps({"lfw": {}}))
    setup_mlflow(params)
    log_evaluation(results, {}, "m" * 64, "f" * 64)
    assert load_verifier(params, None).thresholds == from_file
