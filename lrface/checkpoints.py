"""Loading and saving model weights: the only place in lrface that reads weight files.

Every load uses ``torch.load(..., weights_only=True)``: the public MobileFaceNet checkpoint
(``{"epoch": int, "net_state_dict": OrderedDict}``) is a legacy pickle, but it holds only
tensors, ints and an OrderedDict, which the restricted unpickler accepts, so no full unpickling
(arbitrary code execution) is ever needed. Structures are checked before use and every error
names the file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrface.models.mobilefacenet import FrozenFRNet, MobileFaceNet
from lrface.models.srnet import SRNet, SRNetConfig

SRNET_FORMAT = "lrface-srnet/1"


class CheckpointError(ValueError):
    """A weight file is missing, unreadable or of the wrong architecture."""


def _torch_load(path: str | Path, data: bytes | None = None) -> Any:
    """Load ``path`` (or its already-read bytes ``data``, e.g. shipped to a Ray worker)."""
    import io

    p = Path(path)
    if data is None and not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        return torch.load(io.BytesIO(data) if data is not None else p, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or needs code we refuse to unpickle
        raise CheckpointError(f"cannot read checkpoint {p}: {e}") from e


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that names the file and the keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: not a {type(model).__name__} checkpoint; "
            f"missing keys ({len(missing)}): {missing[:8]}{' ...' if len(missing) > 8 else ''}; "
            f"unexpected keys ({len(unexpected)}): {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}"
        )
    bad = [k for k, v in state_dict.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointError(
            f"{source}: shape mismatch for {bad[:8]} "
            f"(e.g. {bad[0]}: file {tuple(state_dict[bad[0]].shape)} vs model {tuple(own[bad[0]].shape)})"
        )
    model.load_state_dict(state_dict, strict=True)


def load_mobilefacenet(path: str | Path, data: bytes | None = None) -> MobileFaceNet:
    """Load a MobileFaceNet from the public checkpoint format or a bare state dict (``data``: the
    file's bytes when they travelled here without the file, e.g. through Ray's object store)."""
    obj = _torch_load(path, data)
    if isinstance(obj, dict) and "net_state_dict" in obj:
        sd = obj["net_state_dict"]
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj
    else:
        raise CheckpointError(
            f"{path}: expected a dict with 'net_state_dict' or a state dict, got "
            f"{type(obj).__name__} with keys {list(obj)[:5] if isinstance(obj, dict) else '-'}"
        )
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    net = MobileFaceNet()
    load_strict(net, sd, path)
    return net.eval()


def load_frnet(path: str | Path, data: bytes | None = None, precision: str = "fp32") -> FrozenFRNet:
    """The frozen FRNet used for the identity loss, evaluation and inference (``precision``:
    ``fp32`` or ``bf16``, resolved by :func:`lrface.models.precision.resolve_precision`)."""
    return FrozenFRNet(load_mobilefacenet(path, data), precision)


def save_srnet(model: SRNet, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save SRNet weights + config in lrface's own format (loadable with weights_only=True)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": SRNET_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "extra": extra or {},
    }
    tmp = p.with_name(f"{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # concurrent writers
    torch.save(payload, tmp)
    tmp.replace(p)
    return p


def srnet_from_payload(obj: Any, source: str | Path) -> SRNet:
    if not isinstance(obj, dict) or obj.get("format") != SRNET_FORMAT:
        raise CheckpointError(
            f"{source}: not an lrface SRNet checkpoint (expected format {SRNET_FORMAT!r})"
        )
    model = SRNet(SRNetConfig.from_dict(obj["config"]))
    load_strict(model, obj["state_dict"], source)
    return model.eval()


def load_srnet(path: str | Path, data: bytes | None = None) -> SRNet:
    """Load an SRNet saved by :func:`save_srnet` (``data``: the file's bytes, e.g. shipped to a
    Ray worker; ``path`` then only names it)."""
    return srnet_from_payload(_torch_load(path, data), path)
