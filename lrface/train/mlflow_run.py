"""A training's MLflow side: its run (one per job, storage and ``wise_ft``; a resumed job logs
into the same run), the data version DVC locked for its shards, and the final SRNet logged as a
pyfunc model and registered as ``lrface-srnet``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lrface.config import Params, flatten, redact
from lrface.models.srnet import SRNetConfig
from lrface.train.config import TrainConfig


def training_run(params: Params, job: str, store: str, tags: dict[str, str]) -> tuple[str, str]:
    """The job's MLflow run: reused when the same job (name + storage) runs again with the same
    ``wise_ft``; another share blends the same trained weights into a run (and model) of its own."""
    import mlflow
    from mlflow import MlflowClient

    from lrface.tracking import setup_mlflow

    exp_id = setup_mlflow(params)
    client = MlflowClient()
    found = client.search_runs(
        [exp_id],
        f"tags.`lrface.train_job` = '{job}' and tags.`lrface.storage_path` = '{store}' "
        f"and tags.`lrface.wise_ft` = '{tags['lrface.wise_ft']}'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id, mlflow.get_tracking_uri()
    run = client.create_run(exp_id, run_name=job, tags=tags)
    flat = {k: redact(str(v))[:500] for k, v in flatten({k: v for k, v in params.items()}).items()}
    flat.update({f"train.{k}": str(v) for k, v in tags.items() if k == "alpha"})
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in flat.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    return run.info.run_id, mlflow.get_tracking_uri()


def dvc_locked_md5(path: Path) -> str:
    """The md5 DVC recorded for ``path`` in dvc.lock (empty if not found)."""
    import yaml

    lock = Path("dvc.lock")
    if not lock.is_file():
        return ""
    try:
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
    except Exception:
        return ""
    for stage in stages.values():
        for out in stage.get("outs", []):
            if Path(out.get("path", "")).resolve() == path.resolve():
                return str(out.get("md5", ""))
    return ""


def log_and_register(model_path: Path, run_id: str | None, cfg: TrainConfig, mcfg: SRNetConfig) -> str | None:
    """Log the SRNet as a pyfunc model in the run and register it, once per run."""
    import mlflow
    from mlflow import MlflowClient

    from lrface.tracking import (
        CHECKPOINT_ARTIFACT,
        PIP_REQUIREMENTS,
        REGISTERED_MODEL,
        srnet_pyfunc_class,
    )

    if run_id is None:
        return None
    client = MlflowClient()
    existing = client.get_run(run_id).data.tags.get("lrface.model_version")
    if existing:
        return existing
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as d:
        ckpt = Path(d) / CHECKPOINT_ARTIFACT
        ckpt.write_bytes(model_path.read_bytes())
        info = mlflow.pyfunc.log_model(
            name="model", python_model=srnet_pyfunc_class()(), artifacts={"checkpoint": str(ckpt)},
            pip_requirements=PIP_REQUIREMENTS,
        )
        mv = mlflow.register_model(info.model_uri, REGISTERED_MODEL,
                                   tags={"alpha": f"{cfg.alpha:g}", "scale": str(mcfg.scale),
                                         "wise_ft": f"{cfg.wise_ft:g}"})
        mlflow.set_tag("lrface.model_version", str(mv.version))
        mlflow.set_tag("lrface.model_uri", f"models:/{REGISTERED_MODEL}/{mv.version}")
    return str(mv.version)
