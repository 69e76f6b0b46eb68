"""ONNX export of SRNet (dynamic batch and input size) and FRNet (dynamic batch), with a check
that ONNX Runtime reproduces torch's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrface.sizes import FACE_HEIGHT, FACE_WIDTH


def _export(model: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
            dynamic: dict[int, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dims = {i: torch.export.Dim(name, min=1 if name == "batch" else 2) for i, name in dynamic.items()}
    torch.onnx.export(model, (example,), str(path), input_names=[input_name], output_names=[output_name],
                      dynamic_shapes=({k: v for k, v in dims.items()},), dynamo=True, external_data=False,
                      verbose=False)
    return path


def export_srnet(model: nn.Module, path: str | Path) -> Path:
    """``lr (N, 3, H, W)`` in [0, 1] -> ``sr (N, 3, 4H, 4W)``; N, H and W are dynamic."""
    return _export(model, torch.rand(2, 3, 14, 12), Path(path), "lr", "sr", {0: "batch", 2: "height", 3: "width"})


def export_frnet(frnet: nn.Module, path: str | Path) -> Path:
    """``faces (N, 3, 112, 96)`` in [0, 1] -> ``embedding (N, 128)``; N is dynamic."""
    return _export(frnet, torch.rand(2, 3, FACE_HEIGHT, FACE_WIDTH), Path(path), "faces", "embedding",
                   {0: "batch"})


def max_difference(model: nn.Module, onnx_path: str | Path, inputs: list[torch.Tensor]) -> float:
    """Largest absolute difference between torch and ONNX Runtime over ``inputs``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            ref = model.eval()(x).numpy()
            got = sess.run(None, {name: x.numpy()})[0]
            if got.shape != ref.shape:
                raise ValueError(f"{onnx_path}: ONNX output {got.shape} != torch {ref.shape} for input {tuple(x.shape)}")
            worst = max(worst, float(np.abs(got - ref).max()))
    return worst
