"""A verifier from params.yaml: FRNet, the SRNet of ``inference.srnet`` and its thresholds."""

from __future__ import annotations

import json
from dataclasses import asdict

from lrface.inference.config import InferenceConfig
from lrface.inference.thresholds import thresholds_from_metrics, thresholds_from_mlflow
from lrface.inference.verifier import FaceVerifier
from lrface.locations import checkpoint_label
from lrface.models.summary import weights_digest
from lrface.protocols import protocol_name
from lrface.sizes import HR_SIZE


def load_verifier(params, srnet: str | None = "", threshold: float | None = None,
                  protocol: str | None = None) -> FaceVerifier:
    """A verifier from params.yaml: FRNet from ``paths.frnet_checkpoint``, SRNet from ``srnet``
    (``""``: ``inference.srnet``; ``None``: bicubic), thresholds of ``protocol`` (None:
    ``inference.protocol``) from MLflow or metrics.json."""
    from lrface.checkpoints import load_frnet, load_srnet
    from lrface.models.precision import resolve_precision
    from lrface.schema import typed_section

    cfg = InferenceConfig.from_dict(params.get("inference"))
    evaluate = typed_section(params, "evaluate")
    if threshold is not None or protocol is not None:
        cfg = InferenceConfig.from_dict({**asdict(cfg), "threshold": threshold if threshold is not None else cfg.threshold,
                                         "protocol": protocol or cfg.protocol})
    spec = cfg.srnet if srnet == "" else srnet
    model, name, thresholds = None, "bicubic", {}
    from_mlflow = bool(spec and spec.startswith(("models:/", "runs:/")))
    if from_mlflow or cfg.threshold is None:
        from lrface.tracking import setup_mlflow

        setup_mlflow(params)
    if from_mlflow:
        from lrface.tracking import describe_model, load_srnet_uri

        model, name = load_srnet_uri(spec), describe_model(spec)
    elif spec:
        model, name = load_srnet(spec), str(spec)
    if cfg.threshold is None:
        digest = weights_digest(model).hexdigest() if model is not None and not from_mlflow else None
        dataset = evaluate.dataset
        protocol, clean = protocol_name(dataset, cfg.protocol), protocol_name(dataset, "clean")
        thresholds = thresholds_from_mlflow(spec if model is not None else None, cfg.far, digest, protocol, clean)
        if set(thresholds) <= {HR_SIZE}:  # no low-resolution calibration in MLflow: metrics.json
            mfile = params.workspace().pull(evaluate.metrics_file, missing_ok=True)
            if mfile.is_file():
                label = (name if from_mlflow else checkpoint_label(spec)) if model is not None else "bicubic"
                found = thresholds_from_metrics(json.loads(mfile.read_text()), label, cfg.far, protocol, clean)
                thresholds = {**thresholds, **found}
    precision = resolve_precision(typed_section(params, "frnet").precision)
    return FaceVerifier(load_frnet(params.path("frnet_checkpoint"), precision=precision), model, cfg, thresholds,
                        model_name=name, lr_kernel=typed_section(params, "degrade").kernel)
