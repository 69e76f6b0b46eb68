"""Face verification as a served model: an MLflow pyfunc (``lrface-verifier``) bundling SRNet,
FRNet, the inference settings and the evaluation's thresholds, served by MLflow's model server.

Request (POST /invocations), images base64-encoded::

    {"dataframe_records": [{"image_a": "<b64>", "image_b": "<b64>"}]}

Response: ``{"predictions": [{"similarity", "threshold", "same", "a": {faces...}, "b": ...}]}``.
An unreadable image, no face or a face too small is a 400 naming the field; the server goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lrface.inference import FaceVerifier, InferenceConfig, InferenceError

VERIFIER_MODEL = "lrface-verifier"
PIP_REQUIREMENTS = ["torch==2.13.0", "mtcnn==1.0.0", "lrface"]


def _decode_field(row: dict[str, Any], key: str) -> bytes:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise InferenceError(f"{key}: missing (send base64-encoded image bytes)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InferenceError(f"{key}: not valid base64 ({e})") from e


def verifier_pyfunc_class() -> Any:
    import mlflow.pyfunc

    class VerifierPyfunc(mlflow.pyfunc.PythonModel):
        """Rows of ``image_a``/``image_b`` (base64) [+ ``face_a``/``face_b``] -> verification dicts."""

        def load_context(self, context):
            from lrface.checkpoints import load_frnet, load_srnet

            meta = json.loads(Path(context.artifacts["meta"]).read_text())
            srnet = load_srnet(context.artifacts["srnet"]) if "srnet" in context.artifacts else None
            frnet = load_frnet(context.artifacts["frnet"], precision=meta.get("frnet_precision", "fp32"))
            self.verifier = FaceVerifier(frnet, srnet,
                                         InferenceConfig.from_dict(meta["config"]), meta["thresholds"],
                                         model_name=meta["model_name"], lr_kernel=meta.get("lr_kernel", "bicubic"))

        def predict(self, context, model_input, params=None):
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            rows = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
            out = []
            for i, row in enumerate(rows):
                try:
                    a, b = _decode_field(row, "image_a"), _decode_field(row, "image_b")
                    faces = [row.get("face_a"), row.get("face_b")]
                    faces = [None if f is None or f != f else _face_index(f, k) for f, k in
                             zip(faces, ("face_a", "face_b"), strict=True)]  # NaN from pandas: none given
                    res = self.verifier.verify(a, b, faces, names=("image_a", "image_b"))
                except InferenceError as e:
                    raise MlflowException(f"row {i}: {e}", error_code=INVALID_PARAMETER_VALUE) from e
                d = res.as_dict()
                d["a"]["source"], d["b"]["source"] = "image_a", "image_b"
                out.append({**d, "model": self.verifier.model_name})
            return out

    return VerifierPyfunc


def _face_index(value, field: str) -> int:
    """A face index from a request field; anything but a whole number is a bad request (400)."""
    try:
        index = float(value)
    except (TypeError, ValueError):
        index = float("nan")
    if not index.is_integer():
        raise InferenceError(f"{field}: expected a face index (0, 1, ...), got {value!r}")
    return int(index)


def log_verifier(verifier: FaceVerifier, srnet_path: str | Path | None, frnet_path: str | Path) -> str:
    """Log the verifier as a pyfunc model in a new MLflow run and register it; returns its model
    URI. A verifier registered before with the same weights, settings and thresholds is reused,
    so serving the same thing again adds no version."""
    import hashlib

    import mlflow
    from mlflow import MlflowClient

    key = {"embedding": verifier.fingerprint, "config": asdict(verifier.config), "model": verifier.model_name,
           "thresholds": verifier.thresholds}  # the fixed threshold and FAR live in the config
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode())
    fingerprint = digest.hexdigest()[:32]
    same = MlflowClient().search_model_versions(
        f"name = '{VERIFIER_MODEL}' and tags.`lrface.fingerprint` = '{fingerprint}'")
    if same:
        return f"models:/{VERIFIER_MODEL}/{max(int(v.version) for v in same)}"
    with tempfile.TemporaryDirectory() as d, mlflow.start_run(run_name="lrface-verifier",
                                                               tags={"lrface.kind": "serving"}):
        meta = Path(d) / "meta.json"
        meta.write_text(json.dumps({"config": asdict(verifier.config), "thresholds": verifier.thresholds,
                                    "model_name": verifier.model_name,
                                    "frnet_precision": verifier.frnet.precision, "lr_kernel": verifier.lr_kernel}))
        artifacts = {"meta": str(meta), "frnet": str(frnet_path)}
        if srnet_path is not None:
            artifacts["srnet"] = str(srnet_path)
        info = mlflow.pyfunc.log_model(name="verifier", python_model=verifier_pyfunc_class()(),
                                       artifacts=artifacts, pip_requirements=PIP_REQUIREMENTS)
        mv = mlflow.register_model(info.model_uri, VERIFIER_MODEL,
                                   tags={"srnet": verifier.model_name, "lrface.fingerprint": fingerprint})
        return f"models:/{VERIFIER_MODEL}/{mv.version}"
