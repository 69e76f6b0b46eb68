"""Packaging the verifier for serving: one registered version per distinct verifier."""

from __future__ import annotations

import pytest

from lrface.config import load_params
from tests.conftest import FRNET_CKPT, REPO


@pytest.mark.slow
def test_serving_the_same_verifier_again_adds_no_version(tmp_path, frnet):
    from mlflow import MlflowClient

    from lrface.inference import FaceVerifier, InferenceConfig
    from lrface.serving import VERIFIER_MODEL, log_verifier
    from lrface.tracking import setup_mlflow

    setup_mlflow(load_params(REPO / "params.yaml", {"paths.work_dir": str(tmp_path)}))
    first = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.3}), None, FRNET_CKPT)
    again = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.3}), None, FRNET_CKPT)
    other = log_verifier(FaceVerifier(frnet, None, InferenceConfig(), {"14x12": 0.4}), None, FRNET_CKPT)
    assert again == first and other != first
    assert len(MlflowClient().search_model_versions(f"name = '{VERIFIER_MODEL}'")) == 2
