"""Where a protocol's low-resolution faces come from.

``clean`` (the paper's protocol, metrics ``lfw/...``): the shards' LR columns, bicubic downsampling
of the aligned face. ``surveillance`` (``lfw_surv/...``): the camera chain of
``degrade.surveillance`` applied to the aligned HR face, with a fixed draw per image and size
seeded by ``degrade.surveillance.seed``, so every method and every run sees the same corrupted
probes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

import numpy as np
import PIL
import pyarrow as pa
import torch

from lrface.data.degrade import SurveillanceConfig, surveillance_degrade
from lrface.data.images import decode_png
from lrface.data.shards import lr_column
from lrface.data.tensors import faces_to_tensor, png_to_tensor
from lrface.protocols import protocol_name
from lrface.sizes import parse_size


class Probes(Protocol):
    protocol: str
    fingerprint: str  # part of the feature-cache key
    code: tuple[str, ...]  # the lrface modules that make the probes (in the feature-cache key)

    def faces(self, table: pa.Table, rows: np.ndarray, size: str) -> torch.Tensor:
        """LR faces ``(N, 3, h, w)`` in [0, 1] of shard ``rows`` at ``size``."""


class ShardProbes:
    """The clean protocol: the LR faces the shards hold."""

    protocol = "clean"
    fingerprint = "clean"
    code = ("eval/probes.py",)

    def faces(self, table: pa.Table, rows: np.ndarray, size: str) -> torch.Tensor:
        col = table.column(lr_column(size))
        return png_to_tensor([col[int(i)].as_py() for i in rows])


class CameraProbes:
    """The surveillance protocol: the camera chain on the HR face, one fixed draw per image and size."""

    protocol = "surveillance"
    code = ("eval/probes.py", "data/degrade.py", "data/images.py")

    def __init__(self, cfg: SurveillanceConfig, kernel: str = "bicubic") -> None:
        self.cfg, self.kernel = cfg, kernel
        # blur, resampling and JPEG come from Pillow (and its libjpeg), noise from numpy
        what = {**cfg.chain(), "seed": cfg.seed, "kernel": kernel, "pillow": PIL.__version__, "numpy": np.__version__}
        self.fingerprint = "surv-" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]

    def faces(self, table: pa.Table, rows: np.ndarray, size: str) -> torch.Tensor:
        hw = parse_size(size)
        hr, names = table.column("hr_png"), table.column("source_path")
        out = [surveillance_degrade(decode_png(hr[int(i)].as_py()), hw, self.cfg, names[int(i)].as_py(), self.kernel)
               for i in rows]
        return faces_to_tensor(out)


def probes_for(protocol: str, camera: SurveillanceConfig, kernel: str = "bicubic") -> Probes:
    protocol_name("", protocol)  # a bad name fails here
    return ShardProbes() if protocol == "clean" else CameraProbes(camera, kernel)
