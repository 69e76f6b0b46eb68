"""Decision thresholds: which protocol's threshold a pair gets (policy), and where the thresholds
an evaluation measured are looked up (its MLflow runs, else ``metrics.json``)."""

from __future__ import annotations

from typing import Any

from lrface.inference.config import InferenceConfig
from lrface.inference.faces import InferenceError
from lrface.sizes import HR_SIZE, both_lr


def decided_by(size: str, cfg: InferenceConfig) -> str | None:
    """Whose calibration a threshold at ``size`` is: 112x96 pairs have only the clean one; None for
    a fixed threshold."""
    if cfg.threshold is not None:
        return None
    return "clean" if size == HR_SIZE else cfg.protocol


def threshold_for(sa: str, sb: str, thresholds: dict[str, float], cfg: InferenceConfig,
                  model_name: str) -> tuple[float, str]:
    """The evaluation's threshold for this kind of pair (the grid sizes its faces were taken at), at the
    lower resolution of the two: one face low-resolution -> the paper's protocol (``14x12``:
    probe vs 112x96 gallery); both low-resolution -> the both-low protocol (``14x12-14x12``);
    both large -> ``112x96``."""
    order = [HR_SIZE, "28x24", "14x12", "7x6"]
    size = max(sa, sb, key=order.index)
    if sa != HR_SIZE and sb != HR_SIZE:
        size = both_lr(size)
    if cfg.threshold is not None:
        return float(cfg.threshold), size
    if size not in thresholds:
        raise InferenceError(
            f"no verification threshold for {model_name} at {size} under the {cfg.protocol} protocol: "
            f"evaluate the model (`lrface evaluate` with {cfg.protocol!r} in evaluate.protocols logs "
            f"thresholds at FAR {cfg.far:g}), choose another inference.protocol, or pass --threshold")
    return thresholds[size], size


def far_key(far: float) -> str:
    return f"{far:.0e}".replace("e-0", "e-")


def thresholds_from_metrics(metrics: dict[str, Any], method: str, far: float,
                            protocol: str = "lfw", hr_protocol: str = "lfw") -> dict[str, float]:
    """``{size: threshold}`` for ``method`` (LR sizes, from ``protocol``'s section: ``lfw`` or
    ``lfw_surv``) and ``hr`` (112x96, from the clean protocol's) from ``metrics.json``."""
    out: dict[str, float] = {}
    prefix = f"thr_far{far_key(far)}_"
    for section, name, wanted in ((protocol, method, None), (hr_protocol, "hr", HR_SIZE)):
        for k, v in ((metrics.get(section) or {}).get(name) or {}).items():
            if k.startswith(prefix):
                size = k.removeprefix(prefix)
                if wanted is None or size == wanted:
                    out[size] = float(v)
    return out


def thresholds_from_mlflow(model_uri: str | None, far: float, digest: str | None = None,
                           protocol: str = "lfw", hr_protocol: str = "lfw") -> dict[str, float]:
    """Thresholds logged by the latest evaluation runs of ``model_uri`` (or bicubic) under
    ``protocol`` (``lfw``, ``lfw_surv``) and of hr (``lfw``). A checkpoint given by path is found by
    its weights ``digest`` (evaluation may have named the same file by another path)."""
    from mlflow import MlflowClient

    from lrface.tracking import resolve_version

    client = MlflowClient()
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return {}
    resolved = resolve_version(model_uri) if model_uri and model_uri.startswith("models:/") else None
    if resolved:
        sel = (f"tags.`lrface.registered_model` = '{resolved[0]}' and "
               f"tags.`lrface.model_version` = '{resolved[1]}'")
    elif digest:
        sel = f"tags.`lrface.srnet_digest` = '{digest}'"
    elif model_uri:
        sel = f"tags.`lrface.model_uri` = '{model_uri}'"
    else:
        sel = "tags.`lrface.method` = 'bicubic'"
    out: dict[str, float] = {}
    for query, section, only in ((sel, protocol, None), ("tags.`lrface.method` = 'hr'", hr_protocol, HR_SIZE)):
        prefix = f"{section}/thr_far{far_key(far)}_"
        # the latest evaluation that measured this protocol (a later one may have skipped it)
        runs = client.search_runs(exps, f"tags.`lrface.kind` = 'evaluation' and {query}",
                                  order_by=["attributes.start_time DESC"], max_results=20)
        runs = [r for r in runs if any(k.startswith(prefix) for k in r.data.metrics)][:1]
        for k, v in (runs[0].data.metrics.items() if runs else ()):
            if k.startswith(prefix) and (only is None or k.endswith(only)):
                out[k.removeprefix(prefix)] = float(v)
    return out
