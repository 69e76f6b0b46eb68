"""The validator of SRNet training: held-out faces, PSNR/SSIM and identity cosine per scale.

The driver reads the validation faces once (:func:`load_val_set`) and ships them to rank 0
through Ray's object store, so the worker needs no access to the shards' files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lrface.data.shards import ShardSet, lr_column
from lrface.data.tensors import iter_face_batches
from lrface.losses import resize, to_face_size
from lrface.models.srnet import SRNet
from lrface.sizes import FACTOR_SIZES
from lrface.train.metrics import psnr, ssim


@dataclass
class ValSet:
    """Validation faces: HR ``(N, 3, 112, 96)`` and the LR faces of each size, in ``[0, 1]``."""

    hr: torch.Tensor
    lr: dict[str, torch.Tensor]


def load_val_set(shards: ShardSet, factors, max_faces: int) -> ValSet:
    """The first ``max_faces`` rows of the ``val`` split (identity-disjoint from ``train``)."""
    sizes = [FACTOR_SIZES[f] for f in factors]
    cols = ["hr_png", *[lr_column(s) for s in sizes]]
    batch = next(iter(iter_face_batches(shards, cols, batch_size=max_faces, split="val", verify=False)), None)
    if batch is None:
        raise RuntimeError(f"{shards.manifest_path}: validation split is empty: "
                           "raise data.datasets.<train>.val_fraction")
    return ValSet(batch["hr_png"], {s: batch[lr_column(s)] for s in sizes})


class Validator:
    """PSNR/SSIM of SR vs MR and identity cosine ``cos(f(ISR), f(HR))`` per scale, beside
    bicubic's (computed once)."""

    def __init__(self, val: ValSet, frnet, isr_resize: str, device) -> None:
        self.frnet = frnet
        self.sizes = list(val.lr)
        self.isr_resize = isr_resize
        self.device = device
        self.hr = val.hr.to(device)
        self.lr = {s: t.to(device) for s, t in val.lr.items()}
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
            isr = to_face_size(sr, self.isr_resize)  # as evaluation and inference do
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
