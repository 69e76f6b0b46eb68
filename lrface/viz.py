"""Images people would rather look at than numbers: SR comparison grids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FACE_HW = (112, 96)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8."""
    return (x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def sr_grid(
    hr: torch.Tensor,
    lr_by_size: dict[str, torch.Tensor],
    methods: Sequence[tuple[str, Callable[[torch.Tensor], torch.Tensor]]],
    path: Path,
) -> Path:
    """One row per face and LR size: LR (nearest) | each method's output | HR, all at 112x96."""
    from PIL import Image, ImageDraw

    rows: list[list[np.ndarray]] = []
    labels: list[str] = []
    with torch.inference_mode():
        for size, lr in lr_by_size.items():
            outs = [fn(lr) for _, fn in methods]
            lr_big = F.interpolate(lr, size=FACE_HW, mode="nearest")
            for i in range(hr.shape[0]):
                faces = [lr_big[i]] + [
                    F.interpolate(o[i : i + 1], size=FACE_HW, mode="bicubic", align_corners=False)[0]
                    for o in outs
                ] + [hr[i]]
                rows.append([to_uint8(f) for f in faces])
                labels.append(size)
    header = ["LR", *[name[-16:] for name, _ in methods], "HR"]
    h, w, top, left = FACE_HW[0], FACE_HW[1], 14, 40
    canvas = Image.new("RGB", (left + len(header) * w, top + len(rows) * h), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(header):
        draw.text((left + c * w + 2, 1), name, fill="black")
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        draw.text((2, top + r * h + h // 2 - 6), label, fill="black")
        for c, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (left + c * w, top + r * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
