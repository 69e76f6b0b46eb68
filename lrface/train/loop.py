"""The per-worker SRNet training loop for Ray Train's ``TorchTrainer`` (Train V2 API).

Every worker: builds SRNet (DDP via ``prepare_model``: gloo on CPU, NCCL on GPU) and the frozen
FRNet, restores the latest checkpoint if the run has one, then runs exactly ``train.steps``
optimiser steps over its shard of the training set (Ray Data ``streaming_split``, equal rows),
starting a new epoch whenever the shard is exhausted. Each batch uses one downscale factor
drawn from ``train.factors`` (the same on every rank), random horizontal flips, and the joint
loss. Every ``checkpoint_every`` steps all ranks call ``ray.train.report`` (a barrier); rank 0
attaches the checkpoint (model, optimiser, scheduler, step, RNG states) and logs to MLflow.

A non-finite loss is agreed on across ranks; the run then stops without a new checkpoint and
reports ``status = non_finite`` with a checkpoint of the last good state, for the driver to
raise (retrying would hit it again).

Nothing here reads the driver's disk: FRNet's weights, the precomputed HR features and the
validation faces arrive through Ray's object store, shards through Ray Data (local files or S3),
and checkpoints go to Ray Train's storage (a local folder or S3). The optional heartbeat (which
step, pid and node each rank is at; tests use it to inject failures) is written to that storage.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import torch
import torch.distributed as dist

from lrface.allocator import keep_freed_memory
from lrface.checkpoints import load_frnet, load_srnet
from lrface.data.degrade import DegradeConfig
from lrface.losses import JointLoss, LossConfig
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.train.config import TrainConfig, camera_share
from lrface.train.schedule import lr_scheduler
from lrface.train.step import make_batch, train_step
from lrface.train.validation import Validator

STATE_FILE = "state.pt"
NON_FINITE_FILE = "non_finite.json"


def _infinite_batches(shard, batch_size: int) -> Iterator[dict[str, Any]]:
    """Epoch after epoch over this worker's shard (all ranks see equal row counts); each epoch
    re-executes the globally shuffled dataset, so rows come in a fresh seeded order."""
    while True:
        empty = True
        for batch in shard.iter_batches(batch_size=batch_size, batch_format="numpy", drop_last=True):
            empty = False
            yield batch
        if empty:
            raise RuntimeError(f"training shard has fewer than {batch_size} rows per worker")


class Progress:
    """Rank 0's progress line every ``log_every`` steps: a bar, step, losses, samples/s, time left."""

    def __init__(self, name: str, total: int, start: int, stream: TextIO | None = None) -> None:
        self.name, self.total, self.start, self.t0 = name, total, start, time.perf_counter()
        # the process's own stdout: Ray Train's print patch would log a plain print() a second time
        self.stream = stream

    def __call__(self, step: int, m: dict[str, float]) -> None:
        done = step / self.total
        rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)  # steps/s since (re)start
        left = (self.total - step) / rate if rate > 0 else float("inf")
        bar = "#" * int(20 * done) + "-" * (20 - int(20 * done))
        eta = f"{int(left // 60)}:{int(left % 60):02d}" if math.isfinite(left) else "?"
        print(f"{self.name} [{bar}] {100 * done:3.0f}% step {step}/{self.total} | loss {m['train/loss']:.4f} "
              f"(image {m['train/loss_image']:.4f}, identity {m['train/loss_id']:.4f}) | "
              f"{m['train/samples_per_s']:.1f} samples/s | {eta} left", file=self.stream or sys.__stdout__,
              flush=True)


class FiniteOnAllRanks:
    """Is this step's loss finite on every rank? (an all-reduce, so all ranks stop together).
    ``nan_at_step`` (fault injection, tests) makes the loss of that step NaN."""

    def __init__(self, device: torch.device, nan_at_step: int | None = None) -> None:
        self.device, self.nan_at_step = device, nan_at_step
        self.step, self.last = 0, float("nan")

    def __call__(self, value: float) -> bool:
        self.last = float("nan") if self.nan_at_step == self.step else value
        ok = torch.tensor([1.0 if math.isfinite(self.last) else 0.0], device=self.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item() == 1.0)


class MlflowLogger:
    """Rank 0's view of the job's single MLflow run (created by the driver)."""

    def __init__(self, tracking_uri: str | None, run_id: str | None) -> None:
        self.run_id = run_id
        if run_id:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=tracking_uri)

    def metrics(self, values: dict[str, float], step: int) -> None:
        if not self.run_id:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def artifact(self, path: Path, folder: str) -> None:
        if self.run_id:
            self.client.log_artifact(self.run_id, str(path), folder)

    def tag(self, key: str, value: str) -> None:
        if self.run_id:
            self.client.set_tag(self.run_id, key, value)


class Heartbeat:
    """``<storage>/<job>/heartbeat/rank<r>.json``: step, pid and node of one rank (local or S3)."""

    def __init__(self, target: tuple[Any, str] | None, rank: int, every: int) -> None:
        self.fs, base = target if target else (None, "")
        self.path = f"{base}/rank{rank}.json"
        self.every = every
        if self.fs is not None:
            self.fs.create_dir(base, recursive=True)

    def __call__(self, step: int, info: dict[str, Any], force: bool = False) -> None:
        if self.fs is None or not (force or step % self.every == 0):
            return
        with self.fs.open_output_stream(self.path) as f:
            f.write(json.dumps({**info, "step": step}).encode())


def _state_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _gather_nodes(node_id: str) -> list[str]:
    if not (dist.is_available() and dist.is_initialized()):
        return [node_id]
    nodes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, node_id)
    return [str(n) for n in nodes]


def _quiet_ray_train_reports() -> None:
    """Ray Train V2 logs every report (a raw dict of metrics) at INFO through a logger named by its
    file path, out of ``LoggingConfig``'s reach; rank 0's progress line says the same, readably."""
    try:
        from ray.train.v2._internal.execution import context
    except ImportError:  # another Ray layout: its messages stay
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Entry point run by every Ray Train worker."""
    import ray
    import ray.train
    import ray.train.torch

    _quiet_ray_train_reports()
    keep_freed_memory()  # every step frees and re-allocates the same feature maps
    tcfg = TrainConfig.from_dict(config["train"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(tcfg.threads_per_worker)
    device = ray.train.torch.get_device()
    node_id = ray.get_runtime_context().get_node_id()
    heartbeat = Heartbeat(config.get("heartbeat"), rank, int(config.get("heartbeat_every", 1)))
    hb_info = {"pid": os.getpid(), "rank": rank, "node_id": node_id}

    torch.manual_seed(tcfg.seed + 1000 * rank)
    model_cfg = SRNetConfig.from_dict(config["model"])
    model = SRNet(model_cfg).to(device)
    frnet = load_frnet(config["frnet_name"], ray.get(config["frnet"]), config["frnet_precision"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    sched = lr_scheduler(opt, tcfg)
    step = 0
    restored = ray.train.get_checkpoint()
    if restored:
        with restored.as_directory() as d:
            state = torch.load(Path(d) / STATE_FILE, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])

    def snapshot() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": step, "torch_rng": torch.get_rng_state(), "model_config": model_cfg.to_dict()}

    if not restored and config.get("init_weights") is not None:  # a warm start: weights only
        start = load_srnet(config["init_from"], ray.get(config["init_weights"]))
        model.load_state_dict(start.state_dict())
    last_good = _state_bytes(snapshot()) if rank == 0 else b""  # what a non-finite stop keeps
    ddp = ray.train.torch.prepare_model(model)
    nodes = _gather_nodes(node_id)
    lcfg = LossConfig.from_dict(config["loss"])
    loss_fn = JointLoss(frnet if tcfg.alpha > 0 else None, tcfg.alpha, lcfg.mr_resize, lcfg.isr_resize)
    log = MlflowLogger(config.get("mlflow_tracking_uri"), config.get("mlflow_run_id") if rank == 0 else None)
    log.tag("lrface.train_nodes", ",".join(sorted(set(nodes))))
    degrade = DegradeConfig.from_dict(config.get("degrade"))
    share = camera_share(tcfg)
    camera = degrade.surveillance if share > 0 else None
    hr_lookup = ray.get(config["hr_features"]) if config.get("hr_features") is not None and tcfg.alpha > 0 else None
    validator = None
    if rank == 0:
        validator = Validator(ray.get(config["val_set"]), frnet, lcfg.isr_resize, device)
    if restored:
        log.metrics({"train/resumed_from_step": step}, step)
    batches = _infinite_batches(ray.train.get_dataset_shard("train"), tcfg.batch_size // world)
    fault = config.get("fault") or {}
    sums: dict[str, float] = {"loss": 0.0, "loss_image": 0.0, "loss_id": 0.0, "data_s": 0.0, "step_s": 0.0}
    count = 0
    progress = Progress(tcfg.run_name, tcfg.steps, step) if rank == 0 else None
    finite = FiniteOnAllRanks(device, fault.get("nan_at_step"))
    while step < tcfg.steps:
        t0 = time.perf_counter()
        batch = make_batch(next(batches), step, rank, tcfg.seed, tcfg.factors, tcfg.flip, hr_lookup, device,
                           tcfg.factor_weights, camera, degrade.kernel, share)
        t_data = time.perf_counter() - t0
        finite.step = step + 1
        parts = train_step(ddp, loss_fn, opt, sched, batch, finite)
        if parts is None:
            _report_non_finite(rank, step + 1, finite.last, last_good)
            return
        value = finite.last
        step += 1
        count += 1
        for k, v in (("loss", value), ("loss_image", float(parts.image.detach())),
                     ("loss_id", float(parts.identity.detach())),
                     ("data_s", t_data), ("step_s", time.perf_counter() - t0)):
            sums[k] += v
        if fault.get("sleep_s"):
            time.sleep(float(fault["sleep_s"]))
        heartbeat(step, hb_info, force=step == tcfg.steps)
        metrics: dict[str, float] = {}
        if step % tcfg.log_every == 0 or step == tcfg.steps:
            metrics = {f"train/{k}": sums[k] / count for k in ("loss", "loss_image", "loss_id")}
            metrics["train/samples_per_s"] = tcfg.batch_size / (sums["step_s"] / count)
            metrics["train/data_share"] = sums["data_s"] / sums["step_s"]
            metrics["train/lr"] = sched.get_last_lr()[0]
            log.metrics(metrics, step)
            if progress is not None:
                progress(step, metrics)
            sums = dict.fromkeys(sums, 0.0)
            count = 0
        if validator is not None and (step % tcfg.validate_every == 0 or step == tcfg.steps):
            val = validator(model)
            log.metrics(val, step)
            metrics.update(val)
            with tempfile.TemporaryDirectory() as d:
                log.artifact(validator.grid(model, Path(d) / f"sr_grid_step{step:06d}.png"), "sr_grids")
        if step % tcfg.checkpoint_every == 0 or step == tcfg.steps:
            report = {"status": "running" if step < tcfg.steps else "done", "step": step, **metrics}
            state = _state_bytes(snapshot()) if rank == 0 else b""
            _report(report, state)
            last_good = state


def _report(metrics: dict[str, Any], state: bytes, extra: dict[str, str] | None = None) -> None:
    """``ray.train.report`` on every rank (a barrier); rank 0 (non-empty ``state``) attaches the
    checkpoint: ``state.pt`` plus any ``extra`` files."""
    import ray.train

    with tempfile.TemporaryDirectory() as d:
        checkpoint = None
        if state:
            (Path(d) / STATE_FILE).write_bytes(state)
            for name, text in (extra or {}).items():
                (Path(d) / name).write_text(text)
            checkpoint = ray.train.Checkpoint.from_directory(d)
        ray.train.report(metrics, checkpoint=checkpoint)


def _report_non_finite(rank: int, step: int, value: float, last_good: bytes) -> None:
    """Stop on a non-finite loss: one last report whose checkpoint is the last good state, marked
    (Ray Train V2's result carries the latest checkpoint's metrics, so the driver sees the status)."""
    marker = json.dumps({"step": step, "loss": repr(value)})
    _report({"status": "non_finite", "step": step, "loss": value}, last_good if rank == 0 else b"",
            {NON_FINITE_FILE: marker})
