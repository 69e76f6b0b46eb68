"""One SRNet optimisation step, free of Ray: build a batch from shard rows, then step.

The training loop (:mod:`lrface.train.loop`) calls these once per step on every worker; tests call
them directly on a model and a few real faces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lrface.data.degrade import SurveillanceConfig, camera_chain, draw_scale, scale_size
from lrface.data.shards import lr_column
from lrface.data.tensors import faces_to_tensor, png_to_tensor
from lrface.losses import JointLoss, LossParts
from lrface.sizes import FACTOR_SIZES

CAMERA_STREAM = 0xCA  # keeps the camera chain's draws apart from other uses of the same seeds


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


@dataclass
class Batch:
    """LR inputs, their HR targets (flipped alike) and, when precomputed, f(HR)."""

    lr: torch.Tensor
    hr: torch.Tensor
    factor: float  # the downscale factor of this step's LR faces
    hr_features: torch.Tensor | None = None


def step_rngs(seed: int, step: int, rank: int) -> tuple[torch.Generator, torch.Generator]:
    """(scale, flip) generators of one step: the scale is the same on every rank, flips differ per
    rank, and both continue exactly after a restore (they depend on seed, step and rank only)."""
    base = seed * 1_000_003 + step
    return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base * 64 + rank + 1)


def draw_factor(factors: Sequence[int], weights: Sequence[float] | None, rng: torch.Generator) -> int:
    """One downscale factor, with odds proportional to ``weights`` (None: all equal)."""
    if weights is None:
        return factors[int(torch.randint(len(factors), (1,), generator=rng))]
    odds = torch.tensor([float(w) for w in weights], dtype=torch.float64)
    return factors[int(torch.multinomial(odds, 1, generator=rng))]


def make_batch(rows: Mapping[str, Any], step: int, rank: int, seed: int, factors: Sequence[int], flip: bool,
               hr_lookup: Callable[..., torch.Tensor] | None = None, device: torch.device | str = "cpu",
               factor_weights: Sequence[float] | None = None, camera: SurveillanceConfig | None = None,
               kernel: str = "bicubic", camera_share: float = 1.0) -> Batch:
    """Decode shard ``rows`` (``hr_png``, ``sample_id`` and, unless every step uses ``camera``,
    ``lr_<size>_png``) into a training batch with random horizontal flips and f(HR) looked up if
    given. The LR faces are the shards' at one factor drawn for the step (odds ``factor_weights``)
    or, with ``camera`` (on a ``camera_share`` of the steps, drawn per step alike on every rank),
    the camera chain applied to each flipped HR face with its own draw (downsampling with
    ``kernel``, ``degrade.kernel``), at one scale per step."""
    scale_rng, flip_rng = step_rngs(seed, step, rank)
    hr = png_to_tensor([bytes(b) for b in rows["hr_png"]])
    flipped = torch.zeros(hr.shape[0], dtype=torch.bool)
    if flip:
        flipped = torch.rand(hr.shape[0], generator=flip_rng) < 0.5
        hr[flipped] = hr[flipped].flip(-1)
    mixed = camera is not None and camera_share < 1.0  # mixed: this step clean or through the camera
    if mixed and not np.random.default_rng([seed, step, CAMERA_STREAM, 1]).random() < camera_share:
        camera = None
    if camera is None:
        factor: float = draw_factor(factors, factor_weights, scale_rng)
        lr = png_to_tensor([bytes(b) for b in rows[lr_column(FACTOR_SIZES[int(factor)])]])
        lr[flipped] = lr[flipped].flip(-1)
    else:
        factor = draw_scale(camera.scale, np.random.default_rng([seed, step, CAMERA_STREAM]))  # same on all ranks
        lr = camera_faces(hr, scale_size(factor), camera, seed, step, rank, kernel)
    feats = hr_lookup(rows["sample_id"], flipped, device) if hr_lookup is not None else None
    return Batch(lr.to(device), hr.to(device), factor, feats)


def camera_faces(hr: torch.Tensor, hw: tuple[int, int], camera: SurveillanceConfig, seed: int, step: int,
                 rank: int, kernel: str = "bicubic") -> torch.Tensor:
    """LR faces of ``hw`` from HR faces (``(N, 3, 112, 96)`` in [0, 1]) through the camera chain,
    sample ``i`` with its own draw of (seed, step, rank, i): never the same corruption twice."""
    faces = (hr.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()
    out = [camera_chain(face, hw, camera, np.random.default_rng([seed, step, rank, i, CAMERA_STREAM]), kernel)
           for i, face in enumerate(faces)]
    return faces_to_tensor(out)


def train_step(model: torch.nn.Module, loss_fn: JointLoss, opt: torch.optim.Optimizer,
               sched: torch.optim.lr_scheduler.LRScheduler | None, batch: Batch,
               finite: Callable[[float], bool] = math.isfinite) -> LossParts | None:
    """Forward, joint loss, backward, optimiser and scheduler step. Returns the loss parts, or None
    without touching the weights when ``finite(loss)`` says no (the loop agrees on it across ranks)."""
    parts = loss_fn(model(batch.lr), batch.hr, batch.hr_features)
    if not finite(float(parts.total.detach())):
        return None
    opt.zero_grad(set_to_none=True)
    parts.total.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return parts
