"""The per-worker SRNet training loop for Ray Train's ``TorchTrainer`` (Train V2 API).

Every worker: builds SRNet (DDP via ``prepare_model``: gloo on CPU, NCCL on GPU) and the frozen
FRNet, restores the latest checkpoint if the run has one, then runs exactly ``train.steps``
optimiser steps over its shard of the training set (Ray Data ``streaming_split``, equal rows),
starting a new epoch whenever the shard is exhausted. Each batch uses one downscale factor
drawn from ``train.factors`` (the same on every rank), random horizontal flips, and the joint
loss. Every ``checkpoint_every`` steps all ranks call ``ray.train.report`` (a barrier); rank 0
attaches the checkpoint (model, optimiser, scheduler, step, RNG states) and logs to MLflow.

A non-finite loss is agreed on across ranks; the run then stops without a new checkpoint and
reports ``status = non_finite`` for the driver to raise (retrying would hit it again).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from lrface.checkpoints import load_frnet
from lrface.data.shards import ShardSet, lr_column
from lrface.data.tensors import iter_face_batches, png_to_tensor
from lrface.losses import JointLoss, resize
from lrface.models.mobilefacenet import FACE_HEIGHT, FACE_WIDTH
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.train.config import FACTOR_SIZES, TrainConfig
from lrface.train.hr_features import HrFeatureLookup
from lrface.train.metrics import psnr, ssim

STATE_FILE = "state.pt"
NON_FINITE_FILE = "non_finite.json"


def _infinite_batches(shard, batch_size: int) -> Iterator[dict[str, Any]]:
    """Epoch after epoch over this worker's shard (all ranks see equal row counts)."""
    while True:
        empty = True
        for batch in shard.iter_batches(batch_size=batch_size, batch_format="numpy", drop_last=True,
                                        local_shuffle_buffer_size=4 * batch_size):
            empty = False
            yield batch
        if empty:
            raise RuntimeError(f"training shard has fewer than {batch_size} rows per worker")


def _decode(col: Any) -> torch.Tensor:
    return png_to_tensor([bytes(b) for b in col])


def _all_ranks_finite(value: float, device: torch.device) -> bool:
    ok = torch.tensor([1.0 if math.isfinite(value) else 0.0], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() == 1.0)


class Validator:
    """Held-out faces (disjoint identities): PSNR/SSIM of SR vs MR and identity cosine
    ``cos(f(ISR), f(HR))`` per scale, beside bicubic's (computed once)."""

    def __init__(self, shards: ShardSet, frnet, factors, max_faces: int, isr_resize: str, device) -> None:
        self.frnet = frnet
        self.sizes = [FACTOR_SIZES[f] for f in factors]
        self.isr_resize = isr_resize
        self.device = device
        cols = ["hr_png", *[lr_column(s) for s in self.sizes]]
        batches = list(iter_face_batches(shards, cols, batch_size=max_faces, split="val", verify=False))
        if not batches:
            raise RuntimeError("validation split is empty: raise data.datasets.<train>.val_fraction")
        self.hr = batches[0]["hr_png"].to(device)
        self.lr = {s: batches[0][lr_column(s)].to(device) for s in self.sizes}
        with torch.inference_mode():
            self.f_hr = frnet(self.hr)
        self.baseline = self._scores(lambda lr, size: resize(lr, size, "bicubic"))

    @torch.inference_mode()
    def _scores(self, upscale) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.sizes:
            lr = self.lr[s]
            size = (lr.shape[2] * 4, lr.shape[3] * 4)
            sr = upscale(lr, size)
            mr = resize(self.hr, size, "bicubic")
            isr = resize(sr.clamp(0, 1), (FACE_HEIGHT, FACE_WIDTH), self.isr_resize)
            cos = torch.nn.functional.cosine_similarity(self.frnet(isr), self.f_hr, dim=1)
            out[f"psnr_{s}"] = float(psnr(sr, mr).mean())
            out[f"ssim_{s}"] = float(ssim(sr, mr).mean())
            out[f"idcos_{s}"] = float(cos.mean())
        return out

    def __call__(self, model: SRNet) -> dict[str, float]:
        model.eval()
        try:
            scores = self._scores(lambda lr, size: model(lr))
        finally:
            model.train()
        return {**{f"val/{k}": v for k, v in scores.items()},
                **{f"val_bicubic/{k}": v for k, v in self.baseline.items()}}

    def grid(self, model: SRNet, path: Path, n: int = 4) -> Path:
        from lrface.viz import sr_grid

        model.eval()
        try:
            bicubic = ("bicubic", lambda lr: resize(lr, (lr.shape[2] * 4, lr.shape[3] * 4), "bicubic"))
            return sr_grid(self.hr[:n].cpu(), {s: self.lr[s][:n].cpu() for s in self.sizes},
                           [bicubic, ("SRNet", lambda lr: model.cpu()(lr))], path)
        finally:
            model.to(self.device).train()


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


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Entry point run by every Ray Train worker."""
    import ray
    import ray.train
    import ray.train.torch

    tcfg = TrainConfig.from_dict(config["train"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(tcfg.threads_per_worker)
    device = ray.train.torch.get_device()
    heartbeat = Path(config["heartbeat_dir"]) / f"rank{rank}.json"
    node_id = ray.get_runtime_context().get_node_id()
    heartbeat.parent.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(tcfg.seed + 1000 * rank)
    model = SRNet(SRNetConfig.from_dict(config["model"])).to(device)
    frnet = load_frnet(config["frnet_checkpoint"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=tcfg.lr_step, gamma=tcfg.lr_gamma)
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
    ddp = ray.train.torch.prepare_model(model)
    loss_fn = JointLoss(frnet if tcfg.alpha > 0 else None, tcfg.alpha,
                        config["loss"].get("mr_resize", "bicubic"), config["loss"].get("isr_resize", "bicubic"))
    log = MlflowLogger(config.get("mlflow_tracking_uri"), config.get("mlflow_run_id") if rank == 0 else None)
    hr_lookup = HrFeatureLookup(config["hr_features"]) if config.get("hr_features") and tcfg.alpha > 0 else None
    validator = None
    if rank == 0:
        validator = Validator(ShardSet(config["shards_manifest"]), frnet, tcfg.factors, tcfg.val_max_faces,
                              config["loss"].get("isr_resize", "bicubic"), device)
    if restored:
        log.metrics({"train/resumed_from_step": step}, step)
    batches = _infinite_batches(ray.train.get_dataset_shard("train"), tcfg.batch_size // world)
    fault = config.get("fault") or {}
    sums: dict[str, float] = {"loss": 0.0, "loss_image": 0.0, "loss_id": 0.0, "data_s": 0.0, "step_s": 0.0}
    count = 0
    while step < tcfg.steps:
        t0 = time.perf_counter()
        batch = next(batches)
        # Per-step generators: the scale is the same on every rank, flips differ per rank, and
        # both continue exactly after a restore (they depend on seed, step and rank only).
        scale_rng = torch.Generator().manual_seed(tcfg.seed * 1_000_003 + step)
        flip_rng = torch.Generator().manual_seed((tcfg.seed * 1_000_003 + step) * 64 + rank + 1)
        factor = tcfg.factors[int(torch.randint(len(tcfg.factors), (1,), generator=scale_rng))]
        hr = _decode(batch["hr_png"])
        lr = _decode(batch[lr_column(FACTOR_SIZES[factor])])
        flip = torch.zeros(hr.shape[0], dtype=torch.bool)
        if tcfg.flip:
            flip = torch.rand(hr.shape[0], generator=flip_rng) < 0.5
            hr[flip] = hr[flip].flip(-1)
            lr[flip] = lr[flip].flip(-1)
        hr, lr = hr.to(device), lr.to(device)
        hr_feats = hr_lookup(batch["sample_id"], flip, device) if hr_lookup is not None else None
        t_data = time.perf_counter() - t0
        parts = loss_fn(ddp(lr), hr, hr_feats)
        value = float(parts.total.detach())
        if fault.get("nan_at_step") == step + 1:
            value = float("nan")
        if not _all_ranks_finite(value, device):
            if rank == 0:  # the driver reads this marker and raises; no checkpoint is written
                (heartbeat.parent.parent / NON_FINITE_FILE).write_text(
                    json.dumps({"step": step + 1, "loss": repr(value)}))
            ray.train.report({"status": "non_finite", "step": step + 1, "loss": value})
            return
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        sched.step()
        step += 1
        count += 1
        for k, v in (("loss", value), ("loss_image", float(parts.image.detach())),
                     ("loss_id", float(parts.identity.detach())),
                     ("data_s", t_data), ("step_s", time.perf_counter() - t0)):
            sums[k] += v
        if fault.get("sleep_s"):
            time.sleep(float(fault["sleep_s"]))
        heartbeat.write_text(json.dumps({"pid": os.getpid(), "rank": rank, "step": step, "node_id": node_id}))
        metrics: dict[str, float] = {}
        if step % tcfg.log_every == 0 or step == tcfg.steps:
            metrics = {f"train/{k}": sums[k] / count for k in ("loss", "loss_image", "loss_id")}
            metrics["train/samples_per_s"] = tcfg.batch_size / (sums["step_s"] / count)
            metrics["train/data_share"] = sums["data_s"] / sums["step_s"]
            metrics["train/lr"] = sched.get_last_lr()[0]
            log.metrics(metrics, step)
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
            with tempfile.TemporaryDirectory() as d:
                checkpoint = None
                if rank == 0:
                    torch.save({
                        "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
                        "model_config": SRNetConfig.from_dict(config["model"]).to_dict(),
                    }, Path(d) / STATE_FILE)
                    checkpoint = ray.train.Checkpoint.from_directory(d)
                ray.train.report(report, checkpoint=checkpoint)
