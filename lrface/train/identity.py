"""A training job's identity: the name its Ray Train run and checkpoints go under, and where
they are stored. Same name, same storage: an interrupted job resumes; anything that changes what
is trained (settings, input shards, starting weights, FRNet, the training's code) makes a new one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lrface import storage
from lrface.code_digest import RECOGNITION_MODELS, TRAIN_DATA_CODE, code_digest
from lrface.config import Params
from lrface.data.degrade import DegradeConfig
from lrface.train.config import TrainConfig, camera_share

# Train params that define *what* is trained: a change starts a new Ray run instead of resuming.
# (steps, except under a cosine schedule, logging, checkpointing and worker counts can change and
# the run resumes.) job_name adds camera_share for mixed, and lr_schedule and steps under cosine
# (where lr_step and lr_gamma stay in the identity though unused: changing them starts a new run).
IDENTITY_KEYS = ("alpha", "batch_size", "lr", "lr_step", "lr_gamma", "factors", "factor_weights",
                 "flip", "degradation", "seed", "dataset")


def training_code() -> str:
    """Digest of the code a training runs (``lrface/train``, the recognition models, the data
    modules it reads its input with, lrface's top-level modules but
    :data:`~lrface.code_digest.NOT_COMPUTATION`): part of every job's identity."""
    return code_digest("train", *RECOGNITION_MODELS, *TRAIN_DATA_CODE)


def job_name(params: Params, cfg: TrainConfig, manifest_sha256: str, init_sha256: str | None = None,
             frnet: str = "") -> str:
    """``<run name>-<hash of model, loss, training identity, input shards, starting weights,
    FRNet (weights and the arithmetic it trains in) and the training's code>``. With the code in
    it, a changed training (its input order, its loss...) starts a new job instead of resuming the
    last one's checkpoints; an interrupted job of unchanged code resumes."""
    ident = {"model": params.section("model"), "loss": params.section("loss"),
             "train": {k: getattr(cfg, k) for k in IDENTITY_KEYS}, "shards": manifest_sha256,
             "code": training_code()}
    if cfg.lr_schedule != "step":
        ident["train"] |= {"lr_schedule": cfg.lr_schedule, "steps": cfg.steps}  # cosine: steps set every lr
    if frnet and cfg.alpha > 0:  # alpha 0 never runs FRNet
        ident["frnet"] = frnet
    if cfg.degradation != "bicubic":  # the camera chain's parameters shape what is trained
        degrade = DegradeConfig.from_dict(params.get("degrade"))
        ident["camera"] = {**degrade.surveillance.chain(), "kernel": degrade.kernel}
        if cfg.degradation == "mixed":
            ident["camera"]["share"] = camera_share(cfg)
    if init_sha256:
        ident["init"] = init_sha256
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    return f"{cfg.run_name}-{digest[:8]}"


def storage_uri(params: Params, cfg: TrainConfig) -> str:
    """Ray Train's storage: ``train.storage_path`` if absolute or a URI, else under the work dir
    (so in S3 when the work dir is)."""
    if storage.is_remote(cfg.storage_path) or Path(cfg.storage_path).is_absolute():
        return str(cfg.storage_path)
    return params.workspace().uri_of(str(cfg.storage_path))
