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

from lrface.config import Params, mark_process_env, redact

REGISTERED_MODEL = "lrface-srnet"
CHECKPOINT_ARTIFACT = "srnet.pt"
PIP_REQUIREMENTS = ["torch==2.13.0", "lrface"]


def setup_mlflow(params: Params, experiment: str | None = None) -> str:
    """Configure the tracking/registry URI and experiment; returns the experiment id.

    The URIs come from the merged params (``-S`` > ``MLFLOW_TRACKING_URI`` /
    ``MLFLOW_REGISTRY_URI`` > ``mlflow.*`` in params.yaml), else ``sqlite:///<work_dir>/mlflow.db``;
    the registry follows the tracking URI unless set on its own. With a tracking server the
    experiment's artifacts are the server's (``--serve-artifacts``): no client-side ``file://`` root.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow

    cfg = dict(params.get("mlflow") or {})
    uri = cfg.get("tracking_uri") or f"sqlite:///{params.path('work_dir') / 'mlflow.db'}"
    if is_server(uri):
        check_server(uri)
    elif params.workspace().remote:
        raise ValueError(f"paths.work_dir is {params.raw_path('work_dir')} but MLflow would use {uri} on this "
                         "machine only: set MLFLOW_TRACKING_URI (or mlflow.tracking_uri) to a tracking server")
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    registry = cfg.get("registry_uri") or uri
    mlflow.set_tracking_uri(uri)  # MLflow copies both into the env: mark them as not the user's
    mlflow.set_registry_uri(registry)
    for key, name, value in (("mlflow.tracking_uri", "MLFLOW_TRACKING_URI", uri),
                              ("mlflow.registry_uri", "MLFLOW_REGISTRY_URI", registry)):
        if params.source(key) != f"env {name}":  # the user's own value stays the user's
            mark_process_env(name, value)
    name = experiment or cfg.get("experiment", "lrface")
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        exp_id = mlflow.create_experiment(name, artifact_location=artifact_location(params, uri))
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the URI, when an HTTP tracking server does not answer (MLflow's own
    client would retry with back-off for minutes)."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered (e.g. 401 from an auth proxy): the client reports the rest
    except OSError as e:
        raise ConnectionError(f"MLflow tracking server at {redact(uri)} does not answer: {e}") from e


def artifact_location(params: Params, tracking_uri: str) -> str | None:
    """``mlflow.artifact_root`` if set; None (the server decides) for a tracking server; else
    ``<work_dir>/mlartifacts`` (the embedded store keeps artifacts beside its database)."""
    root = (params.get("mlflow") or {}).get("artifact_root")
    if root:
        return root
    if is_server(tracking_uri):
        return None
    return (params.path("work_dir") / "mlartifacts").as_uri()


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
