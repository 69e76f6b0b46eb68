"""MLflow: where runs go, the SRNet model flavour, and the ``lrface-srnet`` registry.

Default store: ``sqlite:///<work_dir>/mlflow.db`` with artifacts in ``<work_dir>/mlartifacts``.
Point at a server by configuration alone: ``MLFLOW_TRACKING_URI`` (env) or ``mlflow.tracking_uri``
in params.yaml. Telemetry is always off.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from lrface.config import Params

REGISTERED_MODEL = "lrface-srnet"
CHECKPOINT_ARTIFACT = "srnet.pt"
PIP_REQUIREMENTS = ["torch==2.13.0", "lrface"]


# MLflow copies the URIs it is given into these env vars (so subprocesses inherit them). A value
# that a ``setup_mlflow`` in this process chose from params (now or earlier: the env may have been
# restored since) is not a user's override.
_ours: dict[str, set[str]] = {"MLFLOW_TRACKING_URI": set(), "MLFLOW_REGISTRY_URI": set()}


def _env_override(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value not in _ours[name] else None


def setup_mlflow(params: Params, experiment: str | None = None) -> str:
    """Configure the tracking/registry URI and experiment; returns the experiment id.

    Precedence: the user's ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``, then params'
    ``mlflow.tracking_uri`` / ``mlflow.registry_uri``, then ``sqlite:///<work_dir>/mlflow.db``;
    the registry follows the tracking URI unless set on its own.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow

    cfg = dict(params.get("mlflow") or {})
    work = params.path("work_dir")
    user = {k: _env_override(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    uri = user["MLFLOW_TRACKING_URI"] or cfg.get("tracking_uri") or f"sqlite:///{work / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    registry = user["MLFLOW_REGISTRY_URI"] or cfg.get("registry_uri") or uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    for name, value in (("MLFLOW_TRACKING_URI", uri), ("MLFLOW_REGISTRY_URI", registry)):
        if not user[name]:
            _ours[name].add(value)
    name = experiment or cfg.get("experiment", "lrface")
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        artifacts = cfg.get("artifact_root") or (work / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=artifacts)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_commit(repo: Path | None = None) -> str:
    """``HEAD``'s sha (``+dirty`` when the tree has changes), or ``unknown`` outside git."""
    cwd = repo or Path.cwd()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_srnet_uri(uri: str):
    """An SRNet from ``models:/lrface-srnet@alias``, ``models:/name/3`` or ``runs:/<id>/model``."""
    import mlflow

    from lrface.checkpoints import load_srnet

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as e:
        raise FileNotFoundError(f"cannot resolve model {uri}: {e}") from e
    found = sorted(local.rglob(CHECKPOINT_ARTIFACT))
    if not found:
        raise FileNotFoundError(f"{uri}: no {CHECKPOINT_ARTIFACT} in the model's artifacts ({local})")
    return load_srnet(found[0])


def resolve_version(uri: str) -> tuple[str, str] | None:
    """``models:/name@alias`` or ``models:/name/N`` -> (name, version); None for other URIs."""
    from mlflow import MlflowClient

    if not uri.startswith("models:/"):
        return None
    ref = uri.removeprefix("models:/")
    client = MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = ref.rpartition("/")
    return name, str(version)


def describe_model(uri: str) -> str:
    """``models:/lrface-srnet/3`` -> ``lrface-srnet v3 (alpha=0.5)`` for tables; the URI otherwise."""
    from mlflow import MlflowClient

    resolved = resolve_version(uri)
    if not resolved:
        return uri
    mv = MlflowClient().get_model_version(*resolved)
    return f"{resolved[0]} v{resolved[1]} (alpha={mv.tags.get('alpha', '?')})"


def srnet_pyfunc_class() -> Any:
    """A pyfunc wrapper so ``mlflow.pyfunc.load_model`` serves SRNet on any size and batch."""
    import mlflow.pyfunc
    import numpy as np

    class SRNetPyfunc(mlflow.pyfunc.PythonModel):
        """Input: float array (N, 3, H, W) or (N, H, W, 3) in [0, 1]; output: x4 in the same layout."""

        def load_context(self, context):
            from lrface.checkpoints import load_srnet

            self.model = load_srnet(context.artifacts["checkpoint"])

        def predict(self, context, model_input, params=None):
            import torch

            x = np.asarray(model_input, dtype=np.float32)
            channels_last = x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3
            t = torch.from_numpy(np.moveaxis(x, -1, 1) if channels_last else x)
            with torch.inference_mode():
                y = self.model(t).numpy()
            return np.moveaxis(y, 1, -1) if channels_last else y

    return SRNetPyfunc
