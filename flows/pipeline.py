"""Prefect flows over the lrface pipeline: thin layers that call ``lrface`` functions.

``prepare`` (align + shards per dataset), ``train`` (one alpha, a Ray Train job on the
configured Ray address), ``evaluate`` (LFW table + reports + MLflow runs) and ``pipeline`` (all
of them; the alpha sweep is submitted as concurrent tasks). Bad input is never retried; a
retry is only configured where a transient failure (a Ray or MLflow connection) can heal.

Run locally: ``python -m flows.pipeline`` (ephemeral Prefect), or against a server with
``PREFECT_API_URL`` set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from lrface.config import load_params


def _params(params_path: str, overrides: dict[str, Any] | None):
    return load_params(params_path, overrides or None)


@task(task_run_name="align {dataset}")
def align_task(params_path: str, dataset: str, overrides: dict[str, Any] | None = None) -> dict:
    from lrface.data.prepare import run_align

    return run_align(_params(params_path, overrides), dataset, progress=False)


@task(task_run_name="shards {dataset}")
def shards_task(params_path: str, dataset: str, overrides: dict[str, Any] | None = None) -> dict:
    from lrface.data.prepare import run_shards

    m = run_shards(_params(params_path, overrides), dataset)
    return {k: m[k] for k in ("dataset", "counts", "splits")}


@task(task_run_name="train alpha={alpha}", retries=1, retry_delay_seconds=10)
def train_task(params_path: str, alpha: float, overrides: dict[str, Any] | None = None) -> dict:
    """Retried once: a rerun resumes the same Ray Train job from its latest checkpoint."""
    from lrface.train.job import run_training

    out = run_training(_params(params_path, overrides), alpha=alpha)
    return {"name": out.name, "model": str(out.model_path), "run_id": out.mlflow_run_id,
            "version": out.model_version}


@task(task_run_name="evaluate")
def evaluate_task(params_path: str, overrides: dict[str, Any] | None = None) -> dict:
    from lrface.eval.report import table_markdown
    from lrface.eval.run import evaluate_lfw

    out = evaluate_lfw(_params(params_path, overrides), progress=False)
    return {"table": table_markdown(out.results), "runs": out.run_ids, "reports": str(out.out_dir)}


@flow(name="prepare", flow_run_name="prepare {dataset}")
def prepare(dataset: str, params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    align_task(params_path, dataset, overrides)
    return shards_task(params_path, dataset, overrides)


@flow(name="train", flow_run_name="train alpha={alpha}")
def train(alpha: float, params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    return train_task(params_path, alpha, overrides)


@flow(name="evaluate", flow_run_name="evaluate")
def evaluate(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    result = evaluate_task(params_path, overrides)
    links = "\n".join(f"- `{m}`: MLflow run `{r}`" for m, r in result["runs"].items())
    create_markdown_artifact(markdown=f"# LFW cross-resolution\n\n{result['table']}\n{links}\n",
                             key="lfw-results", description="LFW 10-fold accuracy (%)")
    return result


@flow(name="pipeline", flow_run_name="pipeline {params_path}")
def pipeline(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    params = _params(params_path, overrides)
    for dataset in params.section("data")["datasets"]:
        prepare(dataset, params_path, overrides)
    futures = [train_task.submit(params_path, float(a), overrides) for a in params.section("train")["alphas"]]
    trained = [f.result() for f in futures]
    return {"trained": trained, "evaluation": evaluate(params_path, overrides)}


if __name__ == "__main__":
    print(pipeline(str(Path("params.yaml").resolve())))
