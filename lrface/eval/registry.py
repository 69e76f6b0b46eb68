"""Evaluation runs in MLflow, the cross-version comparison table and champion promotion.

Each evaluated method is one MLflow run (``lrface.kind=evaluation``) with metrics named
``lfw/acc_14x12``, ``lfw/auc_14x12``, ``lfw/tar_far1e-3_14x12`` ... and tags linking it to what it
evaluated: ``lrface.method``, ``lrface.model_uri``, ``lrface.model_version``, the shard
manifest sha256 and the git commit. ``lrface compare`` reads them back per registered version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrface.eval.lfw import Result
from lrface.eval.report import SIZE_ORDER, result_metrics
from lrface.tracking import REGISTERED_MODEL, git_commit, resolve_version

KIND_TAG = "lrface.kind"


def log_evaluation(results: list[Result], files: dict[str, Path], manifest_sha256: str,
                   frnet_sha256: str, dataset: str = "lfw", uris: dict[str, str] | None = None,
                   digests: dict[str, str] | None = None, frnet_precision: str = "fp32") -> dict[str, str]:
    """One run per method (``uris`` maps a method's name to its model URI, ``digests`` to its SRNet
    weights digest, by which inference finds the thresholds of a checkpoint given by path);
    ``{method: run_id}``."""
    import mlflow

    run_ids: dict[str, str] = {}
    commit = git_commit()
    for method in dict.fromkeys(r.method for r in results):
        tags = {KIND_TAG: "evaluation", "lrface.method": method, "lrface.dataset": dataset,
                "lrface.manifest_sha256": manifest_sha256, "lrface.frnet_sha256": frnet_sha256,
                "lrface.frnet_precision": frnet_precision, "lrface.scoring": "cosine",
                "lrface.git_commit": commit}
        uri = (uris or {}).get(method)
        version = resolve_version(uri) if uri else None
        if uri:
            tags["lrface.model_uri"] = uri
        if (digests or {}).get(method):
            tags["lrface.srnet_digest"] = digests[method]
        if version:
            tags.update({"lrface.registered_model": version[0], "lrface.model_version": version[1]})
        with mlflow.start_run(run_name=f"eval {dataset} {method}", tags=tags) as run:
            metrics: dict[str, float] = {}
            for r in results:  # lfw/acc_14x12, lfw_surv/acc_14x12, ...
                if r.method == method:
                    metrics.update({f"{r.protocol}/{k}": v for k, v in result_metrics(r).items()})
            mlflow.log_metrics(metrics)
            for p in files.values():
                if p.is_file():
                    mlflow.log_artifact(str(p), artifact_path="report")
            run_ids[method] = run.info.run_id
    return run_ids


@dataclass
class Row:
    label: str
    version: str | None
    metrics: dict[str, float]
    run_id: str


def comparison(metric_prefix: str = "lfw/") -> list[Row]:
    """Latest evaluation of hr, bicubic and every registered SRNet version."""
    from mlflow import MlflowClient

    client = MlflowClient()
    rows: list[Row] = []
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    for method in ("hr", "bicubic"):
        runs = client.search_runs(exp_ids, f"tags.`{KIND_TAG}` = 'evaluation' and tags.`lrface.method` = '{method}'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if runs:
            rows.append(Row(method, None, _pick(runs[0].data.metrics, metric_prefix), runs[0].info.run_id))
    try:
        versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except Exception:
        versions = []
    for v in sorted(versions, key=lambda v: int(v.version)):
        runs = client.search_runs(
            exp_ids, f"tags.`{KIND_TAG}` = 'evaluation' and tags.`lrface.model_version` = '{v.version}' "
                     f"and tags.`lrface.registered_model` = '{REGISTERED_MODEL}'",
            order_by=["attributes.start_time DESC"], max_results=1)
        alpha = v.tags.get("alpha", "?")
        label = f"{REGISTERED_MODEL} v{v.version} (alpha={alpha})"
        aliases = getattr(v, "aliases", []) or []
        if aliases:
            label += " [" + ",".join(aliases) + "]"
        metrics = _pick(runs[0].data.metrics, metric_prefix) if runs else {}
        rows.append(Row(label, str(v.version), metrics, runs[0].info.run_id if runs else ""))
    return rows


def _pick(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """The run's metrics under ``prefix``. Evaluations before lrface 0.2 logged the authors'
    mean-subtracted accuracy as ``acc_<size>``: it is read back as ``acc_meansub_<size>``, so it
    never competes with today's plain-cosine ``acc_<size>`` (in tables or promotion)."""
    picked = {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}
    if any(k.startswith("acc_meansub_") for k in picked):
        return picked
    return {(f"acc_meansub_{k[4:]}" if k.startswith("acc_") and not k.startswith("acc_std_") else k): v
            for k, v in picked.items() if not k.startswith("acc_std_")}


def comparison_markdown(rows: list[Row], metric: str = "acc") -> str:
    present = [s for s in SIZE_ORDER if any(f"{metric}_{s}" in r.metrics for r in rows)]
    lines = ["| model | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for r in rows:
        cells = [f"{100 * r.metrics[f'{metric}_{s}']:.2f}" if f"{metric}_{s}" in r.metrics else "—" for s in present]
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def promote(metric: str, alias: str = "champion") -> dict[str, Any]:
    """Point ``alias`` at the version best by ``metric`` (``acc_14x12``: the clean protocol's;
    ``lfw_surv/acc_14x12``: another protocol's), only if it beats the current holder of the
    alias. Returns what happened."""
    from mlflow import MlflowClient

    prefix, _, name = metric.rpartition("/")
    rows = [r for r in comparison(f"{prefix or 'lfw'}/") if r.version is not None and name in r.metrics]
    if not rows:
        raise ValueError(f"no evaluated {REGISTERED_MODEL} version has metric {metric!r}")
    best = max(rows, key=lambda r: r.metrics[name])
    client = MlflowClient()
    try:
        current = str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except Exception:
        current = None
    current_value = next((r.metrics[name] for r in rows if r.version == current), None)
    result = {"alias": alias, "metric": metric, "best_version": best.version,
              "best_value": best.metrics[name], "previous_version": current,
              "previous_value": current_value, "moved": False}
    better = current is None or current_value is None or best.metrics[name] > current_value
    if better and best.version != current:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, best.version)
        result["moved"] = True
    return result
