"""The driver side of SRNet training: checks, Ray Data inputs, the TorchTrainer, the final model.

``run_training`` fails fast (missing FRNet checkpoint, corrupt shards) before any worker starts,
creates or reuses the job's MLflow run (one per job name + storage path, so a resumed or
restarted job never makes a duplicate), runs ``TorchTrainer.fit`` (resuming from the latest
checkpoint under ``storage_path/name`` when there is one), then saves the final SRNet, logs it as
an MLflow pyfunc model and registers it as ``lrface-srnet`` with its alpha and scale as tags.
The job's name: :mod:`lrface.train.identity`; its MLflow run and model: :mod:`lrface.train.mlflow_run`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lrface import storage
from lrface.allocator import keep_freed_memory
from lrface.checkpoints import CheckpointError, load_frnet, load_srnet, save_srnet
from lrface.config import Params
from lrface.data.datasets import open_shards
from lrface.data.shards import lr_column, manifest_digest
from lrface.hashing import sha256_file
from lrface.locations import TRAIN_SUMMARY, model_dir, model_rel
from lrface.models.precision import resolve_precision
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.sizes import FACTOR_SIZES
from lrface.train.config import TrainConfig, train_config
from lrface.train.hr_features import HrFeatureLookup, compute_hr_features, features_path
from lrface.train.identity import job_name, storage_uri
from lrface.train.loop import NON_FINITE_FILE, STATE_FILE, train_loop_per_worker
from lrface.train.mlflow_run import dvc_locked_md5, log_and_register, training_run
from lrface.train.step import NonFiniteLossError
from lrface.train.validation import load_val_set
from lrface.train.warm_start import init_weights, toward_start

if TYPE_CHECKING:
    import ray.train


@dataclass
class TrainOutput:
    name: str
    model_path: Path
    metrics: dict[str, Any]
    mlflow_run_id: str | None
    model_version: str | None
    checkpoint_path: str


def ordered_ingest() -> ray.train.DataConfig:
    """Ray Train's split of the training input across workers, in block order: each worker's
    rows, and their order, follow from the shuffle seed alone. (Train's default copies the
    driver's ``preserve_order``, off by default, and then the order blocks finish in decides
    which worker gets which rows.) The order never costs throughput here: one split per step."""
    import ray.train

    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    return ray.train.DataConfig(execution_options=options)


def build_trainer(cfg: TrainConfig, job: str, store: str, loop_config: dict[str, Any],
                  train_ds: Any) -> Any:
    """The Ray Train job of one training: ``cfg.num_workers`` DDP workers, checkpoints and
    heartbeat under ``store``, the training input split in block order (:func:`ordered_ingest`)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    fs, store_path = storage.filesystem(store)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
            resources_per_worker={"CPU": cfg.threads_per_worker, **({"GPU": 1} if cfg.use_gpu else {})},
            placement_strategy=cfg.placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=job, storage_path=store_path,
            storage_filesystem=fs if storage.is_remote(store) else None,
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.num_to_keep),
            # rank 0's progress line says how training goes; Ray Train's raw report dicts do not
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
        datasets={"train": train_ds},
        dataset_config=ordered_ingest(),
    )


def run_training(params: Params, alpha: float | None = None, name: str | None = None,
                 fault: dict[str, Any] | None = None, track: bool = True, progress: bool = True) -> TrainOutput:
    """Train SRNet for one alpha on Ray Train; see the module docstring."""
    keep_freed_memory()  # the driver's f(HR) pass (the workers set it themselves)
    import ray.data

    from lrface.ray_env import check_reachable, init_ray
    from lrface.tracking import git_commit, is_server

    cfg = train_config(params, alpha, name)
    mcfg = SRNetConfig.from_dict(params.section("model"))
    frnet_path = params.path("frnet_checkpoint")
    try:  # fail before any worker starts, naming the file
        load_frnet(frnet_path)
    except (FileNotFoundError, CheckpointError) as e:
        raise type(e)(f"FRNet checkpoint unusable: {e}") from e
    ws = params.workspace()
    # One arithmetic for both sides of the identity loss: f(ISR) in the workers (forward and
    # backward, on their device) and the precomputed f(HR) here.
    precision = resolve_precision(params.get_dotted("frnet.precision", "auto"),
                                  "cuda" if cfg.use_gpu else "cpu", backward=True)
    frnet_sha = sha256_file(frnet_path)
    store = storage_uri(params, cfg)
    storage.check(store)  # a missing bucket or wrong endpoint fails here, in seconds
    address = params.get_dotted("ray.address") or "local"
    if address != "local":
        check_reachable(address)  # so does a cluster address that does not answer
        if track and not is_server(params.get_dotted("mlflow.tracking_uri") or ""):
            raise ValueError(f"ray.address is {address}: training workers on other nodes cannot log to this "
                             "machine's SQLite store; set MLFLOW_TRACKING_URI to a tracking server")
    shards = open_shards(params, cfg.dataset)
    shards.verify()
    init = init_weights(params, cfg.init_from)  # a missing or mismatched start model fails here
    job = job_name(params, cfg, manifest_digest(shards.manifest_path), init[1] if init else None,
                   f"{frnet_sha}-{precision}")

    tags = {
        "lrface.kind": "training", "lrface.train_name": cfg.run_name, "lrface.train_job": job,
        "lrface.storage_path": store,
        "lrface.git_commit": git_commit(), "lrface.shards_manifest_sha256": manifest_digest(shards.manifest_path),
        "lrface.dvc_shards_md5": dvc_locked_md5(shards.dir), "lrface.frnet_sha256": frnet_sha,
        "lrface.frnet_precision": precision,
        "alpha": f"{cfg.alpha:g}", "scale": str(mcfg.scale),
        "lrface.init_from": cfg.init_from or "seed", "lrface.init_sha256": init[1] if init else "",
        "lrface.wise_ft": f"{cfg.wise_ft:g}",
    }
    run_id, tracking_uri = training_run(params, job, store, tags) if track else (None, None)

    init_ray(address, num_cpus=max(os.cpu_count() or 1, cfg.num_workers * cfg.threads_per_worker + 1)
             if address == "local" else None)
    ray.data.DataContext.get_current().enable_progress_bars = False  # MLflow/heartbeat show progress
    hr_features = None
    if cfg.alpha > 0 and cfg.hr_feature_cache:
        frnet = load_frnet(frnet_path, precision=precision)
        torch.set_num_threads(os.cpu_count() or 1)
        key = f"{frnet_sha}-{precision}"
        path = compute_hr_features(shards, frnet, features_path(ws.local / "cache" / "hr_features", shards, key),
                                   progress=progress)
        hr_features = ray.put(HrFeatureLookup.from_file(path))  # to every worker, any node
    columns = ["sample_id", "hr_png"]
    if cfg.degradation != "surveillance":  # the camera chain makes its LR faces from hr_png
        columns += [lr_column(FACTOR_SIZES[f]) for f in cfg.factors]
    # On a cluster, workers read the bucket or, for a local work dir, rows this driver shipped.
    train_ds = shards.ray_dataset(columns=columns, verify=False, split="train", num_cpus=0,
                                  ship=address != "local", shuffle_seed=cfg.seed)
    fs, store_path = storage.filesystem(store)
    fs.create_dir(store_path, recursive=True)
    loop_config = {
        "train": cfg.to_dict(), "model": mcfg.to_dict(), "loss": params.section("loss"),
        "degrade": params.section("degrade"),
        "frnet": ray.put(frnet_path.read_bytes()), "frnet_name": frnet_path.name, "frnet_precision": precision,
        "mlflow_run_id": run_id, "mlflow_tracking_uri": tracking_uri,
        "heartbeat": (fs, f"{store_path}/{job}/heartbeat"), "heartbeat_every": cfg.log_every if storage.is_remote(store) else 1,
        "fault": fault or {}, "hr_features": hr_features,
        "init_weights": ray.put(init[0]) if init else None, "init_from": cfg.init_from,
        "val_set": ray.put(load_val_set(shards, cfg.factors, cfg.val_max_faces)),
    }
    trainer = build_trainer(cfg, job, store, loop_config, train_ds)
    try:
        result = trainer.fit()
    except Exception as e:  # Train V2's TrainingFailedError is no RuntimeError: name the job for the CLI
        raise RuntimeError(f"{cfg.run_name}: Ray Train job {job} failed (storage {store}): {e}") from e
    metrics = dict(result.metrics or {})
    if result.checkpoint is None:
        raise RuntimeError(f"{cfg.run_name}: training finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        marker = Path(d) / NON_FINITE_FILE
        if marker.is_file():
            bad = json.loads(marker.read_text())
            raise NonFiniteLossError(f"{cfg.run_name}: loss became {bad['loss']} at step {bad['step']}; "
                                     f"stopped. Last good checkpoint: {result.checkpoint.path}")
        state = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)
    model = SRNet(SRNetConfig.from_dict(state["model_config"]))
    weights = state["model"]
    if cfg.wise_ft < 1.0 and init is not None:  # train_config sets 1 for a seeded start
        weights = toward_start(load_srnet(str(cfg.init_from), init[0]).state_dict(), weights, cfg.wise_ft)
    model.load_state_dict(weights)
    out_dir = model_dir(params, cfg.run_name)
    model_path = save_srnet(model, out_dir / "srnet.pt", extra={"step": int(state["step"]), "alpha": cfg.alpha})
    summary = {"name": cfg.run_name, "job": job, "alpha": cfg.alpha, "step": int(state["step"]),
               "final_metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
               "mlflow_run_id": run_id, "checkpoint": result.checkpoint.path, "storage": store,
               "wise_ft": cfg.wise_ft}  # final_metrics: the trained weights' (before wise_ft)
    version = log_and_register(model_path, run_id, cfg, mcfg) if (track and cfg.register) else None
    summary["model_version"] = version
    (out_dir / TRAIN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    ws.push(model_rel(cfg.run_name), last=(TRAIN_SUMMARY,))  # the summary marks the output complete
    return TrainOutput(cfg.run_name, model_path, metrics, run_id, version, result.checkpoint.path)


