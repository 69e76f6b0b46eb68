"""Where a training's SRNet starts: seeded random weights, or another model of the sweep.

``train.sweep`` maps each alpha to the model its SRNet starts from: ``srnet-init`` (the
seeded random initialisation, written once by :func:`write_init_model`, DVC stage ``init``), or
another model of the sweep such as ``srnet-alpha0`` (a warm start, and a DVC dependency of that
stage). Only the weights are taken; the optimiser and the learning-rate schedule start fresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import torch

from lrface.checkpoints import CheckpointError, load_srnet, save_srnet
from lrface.config import Params
from lrface.locations import INIT_MODEL, TRAIN_SUMMARY, model_dir, model_rel
from lrface.models.srnet import SRNet, SRNetConfig

WEIGHTS_FILE = "srnet.pt"


def write_init_model(params: Params) -> Path:
    """``models/srnet-init``: SRNet of ``model.*`` with weights drawn from ``train.seed``."""
    seed = int(params.get_dotted("train.seed", 0))
    with torch.random.fork_rng(devices=[]):  # seed the draw, not the caller's RNG
        torch.manual_seed(seed)
        model = SRNet(SRNetConfig.from_dict(params.section("model")))
    out = model_dir(params, INIT_MODEL)
    path = save_srnet(model, out / WEIGHTS_FILE, extra={"step": 0, "seed": seed})
    summary = {"name": INIT_MODEL, "step": 0, "seed": seed, "model": model.config.to_dict()}
    (out / TRAIN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    params.workspace().push(model_rel(INIT_MODEL), last=(TRAIN_SUMMARY,))
    return path


def init_model_is_current(params: Params) -> bool:
    """Does ``models/srnet-init`` exist, drawn for this ``model.*`` and ``train.seed``?"""
    ws = params.workspace()
    summary = ws.pull(f"{model_rel(INIT_MODEL)}/{TRAIN_SUMMARY}", missing_ok=True)
    if not summary.is_file():
        return False
    meta = json.loads(summary.read_text())
    want = SRNetConfig.from_dict(params.section("model")).to_dict()
    return meta.get("seed") == int(params.get_dotted("train.seed", 0)) and meta.get("model") == want


def init_weights(params: Params, init_from: str | None) -> tuple[bytes, str] | None:
    """The bytes and sha256 of the SRNet checkpoint a training starts from (None: the worker's own
    seeded initialisation). ``srnet-init`` is (re)written when missing or made for other
    ``model.*`` / ``train.seed``; another model must exist (train it first) and match ``model.*``."""
    if not init_from:
        return None
    ws = params.workspace()
    rel = model_rel(init_from)
    if init_from == INIT_MODEL and not init_model_is_current(params):
        write_init_model(params)
    local = ws.pull(rel, missing_ok=True, complete=TRAIN_SUMMARY) / WEIGHTS_FILE
    if not local.is_file():
        raise FileNotFoundError(f"train.sweep starts a model from {init_from}, but {local} does not exist: "
                                f"train {init_from} first (DVC orders it: dvc repro)")
    start = load_srnet(local)
    want = SRNetConfig.from_dict(params.section("model"))
    if start.config != want:
        raise CheckpointError(f"{local}: its SRNet ({start.config.to_dict()}) is not the one model.* "
                              f"describes ({want.to_dict()}): cannot start from it")
    data = local.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def toward_start(start: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor],
                 keep: float) -> dict[str, torch.Tensor]:
    """WiSE-FT (Wortsman et al., 2022): the weights ``start + keep * (trained - start)``, keeping
    ``keep`` of a fine-tune's change, parameter by parameter (a weight-normalised conv's magnitude
    and direction each). Both state dicts are of the same SRNet (a warm start); integer buffers
    are taken from ``trained``."""
    if start.keys() != trained.keys():
        raise ValueError(f"train.wise_ft: the start and trained weights differ in parameters "
                         f"({sorted(set(start) ^ set(trained))[:4]}...)")
    return {k: torch.lerp(start[k].to(v.dtype), v, keep) if v.is_floating_point() else v.clone()
            for k, v in trained.items()}
