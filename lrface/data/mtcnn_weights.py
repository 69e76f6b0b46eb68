"""The MTCNN weights the ``mtcnn`` wheel ships (``mtcnn/assets/weights/{p,r,o}net.lz4``, joblib
pickles of the Keras weight lists), read into :mod:`lrface.models.mtcnn`'s nets without importing
the package (it imports TensorFlow)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrface.models.mtcnn import ONet, PNet, RNet


def package_weights_dir() -> Path:
    """``mtcnn/assets/weights`` of the installed ``mtcnn`` package, found without importing it."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mtcnn package (whose wheel ships the MTCNN weights) is not installed; "
                                "pass weights_dir= a folder holding pnet.lz4, rnet.lz4, onet.lz4")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def load_keras_weights(net: nn.Module, arrays: Sequence[np.ndarray]) -> nn.Module:
    """Copy a Keras weight list (layer order; conv HWIO, dense (in, out), PReLU (1, 1, C)) into
    ``net``, whose parameters are declared in the same order."""
    params = list(net.named_parameters())
    if len(params) != len(arrays):
        raise ValueError(f"{type(net).__name__}: {len(arrays)} weight arrays for {len(params)} parameters")
    with torch.no_grad():
        for (name, p), a in zip(params, arrays, strict=True):
            t = torch.from_numpy(np.array(a, dtype=np.float32))
            if t.ndim == 4:
                t = t.permute(3, 2, 0, 1)  # HWIO -> OIHW
            elif t.ndim == 2:
                t = t.T  # (in, out) -> (out, in)
            elif t.ndim == 3:
                t = t.reshape(-1)  # PReLU alpha shared over H, W
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"{type(net).__name__}.{name}: weight of shape {tuple(a.shape)} "
                                 f"does not fit {tuple(p.shape)}")
            p.copy_(t)
    return net


def load_nets(weights_dir: str | Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three nets with the package's weights (read as files; see the module docstring)."""
    import joblib  # a dependency of mtcnn; reads the lz4-compressed pickles

    folder = Path(weights_dir) if weights_dir is not None else package_weights_dir()
    nets = []
    for cls, name in ((PNet, "pnet"), (RNet, "rnet"), (ONet, "onet")):
        path = folder / f"{name}.lz4"
        if not path.is_file():
            raise FileNotFoundError(f"MTCNN weights not found: {path}")
        nets.append(load_keras_weights(cls(), joblib.load(path)).eval())
    return nets[0], nets[1], nets[2]
