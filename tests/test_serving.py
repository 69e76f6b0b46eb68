"""Packaging the verifier for serving: one registered version per distinct verifier."""

from __future__ import annotations

import pytest

from lrface.config import load_params
from tests.conftest import FRNET_CKPT, REPO


@pytest.mark.slow
def test_serving_the_same_verifier_again_adds_no_version(tmp_path, frnet):
    from mlflow import MlflowClient

    from lrface.inference import FaceVerifier, InferenceConfig
    from lrface.inference.serving import VERIFIER_MODEL, log_verifier
    from lrface.tracking import setup_mlflow

    setup_mlflow(load_params(REPO / "params.yaml", {"paths.work_dir": str(tmp_path)}))
    first = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.3}), None, FRNET_CKPT)
    again = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.3}), None, FRNET_CKPT)
    other = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.4}), None, FRNET_CKPT)
    assert again == first and other != first
    fixed = [log_verifier(FaceVerifier(frnet, None, InferenceConfig(threshold=t), {}), None, FRNET_CKPT)
             for t in (0.3, 0.5)]  # a fixed threshold is part of what is served
    assert fixed[0] != fixed[1] and not {first, other} & set(fixed)
    assert len(MlflowClient().search_model_versions(f"name = '{VERIFIER_MODEL}'")) == 4


@pytest.mark.slow
def test_serve_refuses_to_start_without_thresholds(tmp_path):
    """No evaluation has calibrated the model and no --threshold: a server would answer every
    request with an error, so it does not start."""
    import subprocess
    import sys

    from tests.servers import child_env, free_port

    res = subprocess.run([sys.executable, "-m", "lrface.cli", "--params", str(REPO / "params.yaml"), "-S",
                          f"paths.work_dir={tmp_path}", "serve", "--bicubic", "--port", str(free_port())],
                         cwd=REPO, capture_output=True, text=True, env=child_env(), timeout=300)
    assert res.returncode == 1, res.stdout[-1000:] + res.stderr[-1000:]
    assert "no thresholds for bicubic" in res.stderr and "--threshold" in res.stderr
