"""Prefect flows over the lrface pipeline, each a thin layer over the tasks in ``flows.tasks``.

* ``prepare``: align + shards for one dataset (``steps`` picks a subset: DVC runs each alone);
* ``init``: the seeded random SRNet (``models/srnet-init``) that sweep members may start from;
* ``train``: one alpha, a Ray Train job on ``ray.address`` (local Ray by default), starting from
  the model ``train.sweep`` names for it;
* ``evaluate``: the LFW table, reports, MLflow runs and a Markdown artifact with both;
* ``pipeline``: all of them; the alpha sweep runs concurrently when the Ray cluster has room.

With no ``PREFECT_API_URL`` a flow runs against an ephemeral local Prefect; with it, the runs
show up in that server's UI. Run: ``python -m flows pipeline`` (see ``flows/__main__.py``).
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.tasks import (
    align_output,
    align_task,
    evaluate_task,
    fresh_if_missing,
    params_of,
    shards_output,
    shards_task,
    train_output,
    train_task,
)

DATA_STEPS = ("align", "shards")


@flow(name="prepare", flow_run_name="prepare {dataset}: {steps}")
def prepare(dataset: str, params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
            steps: list[str] | tuple[str, ...] = DATA_STEPS) -> dict[str, Any]:
    """Align ``dataset`` (MTCNN on Ray Data) and/or write its Parquet shards."""
    unknown = set(steps) - set(DATA_STEPS)
    if unknown:
        raise ValueError(f"prepare steps must be among {DATA_STEPS}, got {sorted(unknown)}")
    p = params_of(params_path, overrides)
    out: dict[str, Any] = {}
    if "align" in steps:
        out["align"] = fresh_if_missing(align_task, p, align_output(dataset))(params_path, dataset, overrides)
    if "shards" in steps:
        out["shards"] = fresh_if_missing(shards_task, p, shards_output(dataset))(params_path, dataset, overrides)
    return out


@flow(name="init", flow_run_name="init srnet")
def init_model(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``models/srnet-init``: the seeded random SRNet that sweep members start from."""
    from lrface.commands.train import init_model as write

    return write(params_of(params_path, overrides))


@flow(name="train", flow_run_name="train alpha={alpha}")
def train(alpha: float, params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Train and register SRNet for one alpha."""
    p = params_of(params_path, overrides)
    return fresh_if_missing(train_task, p, train_output(p, float(alpha)))(params_path, float(alpha), overrides)


def mlflow_run_link(run_id: str) -> str:
    """A clickable link when MLflow is a server, else the run id for ``mlflow ui``."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        exp = mlflow.get_run(run_id).info.experiment_id
        return f"[{run_id[:8]}]({uri.rstrip('/')}/#/experiments/{exp}/runs/{run_id})"
    return f"`{run_id}` ({uri})"


def results_markdown(result: dict[str, Any], trained: list[dict[str, Any]] | None = None) -> str:
    lines: list[str] = []
    for protocol, t in (result.get("tables") or {"lfw": result}).items():
        lines += [f"# {t.get('heading', protocol)}", "", t.get("intro", "") + ".", "", t["table"], ""]
        if t.get("table_both_low"):
            lines += ["Both faces at the low resolution (the thresholds `lrface verify` uses for two small faces).",
                      "", t["table_both_low"], ""]
        if t.get("table_meansub"):
            lines += ["The same features scored by the MobileFaceNet authors' recipe (mean-subtracted cosine).",
                      "", t["table_meansub"], ""]
    lines += ["## MLflow", ""]
    lines += [f"- evaluation of `{m}`: {mlflow_run_link(r)}" for m, r in result["runs"].items()]
    for t in trained or []:
        if t.get("run_id"):
            lines.append(f"- training alpha={t['alpha']:g} (lrface-srnet v{t.get('version')}): "
                         f"{mlflow_run_link(t['run_id'])}")
    lines += ["", f"Reports: `{result['reports']}`"]
    return "\n".join(lines) + "\n"


@flow(name="evaluate", flow_run_name="evaluate {dataset}")
def evaluate(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
             dataset: str = "lfw", methods: list[str] | None = None,
             trained: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Evaluate hr, bicubic and the trained models; publish the table as a Markdown artifact."""
    result = evaluate_task(params_path, dataset, overrides, methods)
    from lrface.tracking import setup_mlflow

    setup_mlflow(params_of(params_path, overrides))
    create_markdown_artifact(markdown=results_markdown(result, trained), key="lfw-results",
                             description="LFW 10-fold accuracy (%), clean and surveillance, and MLflow runs")
    return result


def parallel_trainings(params_path: str, overrides: dict[str, Any] | None) -> int:
    """How many trainings fit side by side: ``orchestration.parallel_trainings`` or, when
    ``auto``, the cluster's CPUs (or GPUs) over what one job asks for (at least 1)."""
    from lrface.schema import typed_section

    p = params_of(params_path, overrides)
    setting = typed_section(p, "orchestration").parallel_trainings
    if setting != "auto":
        return int(setting)
    t = typed_section(p, "train")
    cpus_per_job = t.num_workers * t.threads_per_worker + 1  # + the trainer's driver
    address = typed_section(p, "ray").address or "local"
    if address == "local":
        return max(1, (os.cpu_count() or 1) // cpus_per_job)
    import ray

    from lrface.ray_env import init_ray

    init_ray(address)
    res = ray.cluster_resources()
    if t.use_gpu:
        return max(1, int(res.get("GPU", 0)) // t.num_workers)
    return max(1, int(res.get("CPU", 0)) // cpus_per_job)


@flow(name="pipeline", flow_run_name="pipeline alphas={alphas}")
def pipeline(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
             alphas: list[float] | None = None) -> dict[str, Any]:
    """Prepare every dataset, train every alpha of ``train.sweep`` (a model that starts from
    another waits for it; the rest run concurrently when resources allow), evaluate."""
    from lrface.schema import typed_section
    from lrface.train.config import sweep_order, train_config

    log = get_run_logger()
    p = params_of(params_path, overrides)
    sweep = train_config(p).sweep
    if alphas is not None:  # a subset of the sweep, or alphas outside it from where training starts them
        sweep = {f"{float(a):g}": train_config(p, float(a)).init_from for a in alphas}
    for dataset in typed_section(p, "data").datasets or {}:
        prepare(dataset, params_path, overrides)
    if "srnet-init" in sweep.values():  # before any training, so their cache keys see it
        init_model(params_path, overrides)
    width = parallel_trainings(params_path, overrides)
    waves = sweep_order(sweep)
    log.info("training alphas %s (in order %s), %d at a time", list(sweep), waves, width)
    trained: list[dict[str, Any]] = []
    for wave in waves:
        for i in range(0, len(wave), width):
            futures = [fresh_if_missing(train_task, p, train_output(p, float(a))).submit(params_path, float(a),
                                                                                         overrides)
                       for a in wave[i : i + width]]
            trained += [f.result() for f in futures]
    result = evaluate(params_path, overrides, typed_section(p, "evaluate").dataset, None, trained)
    return {"trained": trained, "evaluation": result}
