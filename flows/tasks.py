"""Prefect tasks: each a thin call into ``lrface`` with retries, caching and a readable name.

Retries only where they can help. Bad input (a corrupt shard, an unreadable pairs file, a missing
checkpoint, a NaN loss that would recur) fails at once; a dropped Ray or MLflow connection is
retried, and a retried training resumes its Ray Train job from the latest checkpoint.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from flows.caching import file_digest, output_digest, stage_key, tree_listing_digest
from lrface.code_digest import RECOGNITION_MODELS, TRAIN_DATA_CODE
from lrface.commands import bad_input_errors
from lrface.config import Params, load_params
from lrface.locations import train_summary_rel


def retry_unless_bad_input(task, task_run, state) -> bool:  # noqa: ARG001 - Prefect's signature
    """Prefect ``retry_condition_fn``: retry transient failures only."""
    try:
        state.result()
    except bad_input_errors():
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient (a dropped connection)
        pass
    return True


def params_of(params_path: str, overrides: dict[str, Any] | None) -> Params:
    return load_params(params_path, overrides or None)


def _dataset_inputs(params: Params, dataset: str) -> list[str]:
    from lrface.data.datasets import DatasetSpec, data_path

    spec = DatasetSpec.from_params(params, dataset)
    roots = [data_path(params, s["root"]) for s in spec.sources]
    files = [data_path(params, f) for f in (spec.pairs, spec.test_pairs, spec.landmarks_file,
                                            spec.fallback_landmarks) if f]
    return [*(tree_listing_digest(r) for r in roots if r), *(file_digest(f) for f in files if f)]


# Each stage's output is complete when its completion file exists, relative to paths.work_dir
# (a local folder or a bucket: lrface.storage.Workspace pushes that file last).
def align_output(dataset: str) -> str:
    return f"{dataset}/aligned/summary.json"


def shards_output(dataset: str) -> str:
    return f"{dataset}/shards/manifest.json"


def train_output(p: Params, alpha: float) -> str:
    from lrface.train.config import train_config

    return train_summary_rel(train_config(p, alpha).run_name)


def _align_key(ctx: TaskRunContext, args: dict[str, Any]) -> str:
    p = params_of(args["params_path"], args.get("overrides"))
    ds = args["dataset"]
    return stage_key(f"align-{ds}", p, ["align", "data.rows_per_shard", f"data.datasets.{ds}"],
                     _dataset_inputs(p, ds), code=("data", "models"))


def _shards_key(ctx: TaskRunContext, args: dict[str, Any]) -> str:
    p = params_of(args["params_path"], args.get("overrides"))
    ds = args["dataset"]
    return stage_key(f"shards-{ds}", p, ["degrade.sizes", "degrade.kernel", "data.rows_per_shard", "data.split_seed",
                                         f"data.datasets.{ds}"], [output_digest(p, align_output(ds))],
                     code=("data",))


def _train_key(ctx: TaskRunContext, args: dict[str, Any]) -> str:
    from lrface.train.config import train_config

    p = params_of(args["params_path"], args.get("overrides"))
    cfg = train_config(p, args["alpha"])
    start = [output_digest(p, train_summary_rel(cfg.init_from))] if cfg.init_from else []  # a warm start's model
    camera = ["degrade.kernel", "degrade.surveillance"] if cfg.degradation != "bicubic" else []
    return stage_key(f"train-{cfg.run_name}", p, ["model", "loss", "train", "frnet", "paths.work_dir", *camera],
                     [args["alpha"], output_digest(p, shards_output(cfg.dataset)),
                      file_digest(p.path("frnet_checkpoint")), *start],
                     code=("train", *RECOGNITION_MODELS, *TRAIN_DATA_CODE))  # not the detector: it never runs


def fresh_if_missing(task_fn, p: Params, output: str):
    """The task, set to ignore its cache when its output (relative to the work dir) is gone."""
    return task_fn if p.workspace().exists(output) else task_fn.with_options(refresh_cache=True)


@task(task_run_name="align {dataset}", cache_key_fn=_align_key, persist_result=True,
      retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input)
def align_task(params_path: str, dataset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """MTCNN detection + 5-point alignment of ``dataset`` on Ray Data actors."""
    from lrface.commands.data import align

    summary = align(params_of(params_path, overrides), dataset, progress=True)
    return {"dataset": dataset, "counts": summary["counts"]}


@task(task_run_name="shards {dataset}", cache_key_fn=_shards_key, persist_result=True)
def shards_task(params_path: str, dataset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Degrade the aligned faces and write verified Parquet shards (local, deterministic)."""
    from lrface.commands.data import shards

    m = shards(params_of(params_path, overrides), dataset)
    return {"dataset": dataset, "counts": m["counts"], "splits": m["splits"]}


@task(task_run_name="train alpha={alpha}", cache_key_fn=_train_key, persist_result=True,
      retries=1, retry_delay_seconds=10, retry_condition_fn=retry_unless_bad_input)
def train_task(params_path: str, alpha: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Ray Train job (on ``ray.address``); a retry resumes it from its latest checkpoint."""
    from lrface.commands.train import train

    return train(params_of(params_path, overrides), alpha=alpha, progress=True)


@task(task_run_name="evaluate {dataset}", retries=1, retry_delay_seconds=10,
      retry_condition_fn=retry_unless_bad_input)
def evaluate_task(params_path: str, dataset: str = "lfw", overrides: dict[str, Any] | None = None,
                  methods: list[str] | None = None) -> dict[str, Any]:
    """The LFW cross-resolution table (features are cached on disk by lrface itself)."""
    from lrface.commands.evaluate import evaluate

    return evaluate(params_of(params_path, overrides), methods, progress=True)
