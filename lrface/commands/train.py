"""``lrface train``: SRNet with the joint loss on Ray Train, tracked and registered in MLflow."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lrface.commands import params_from_args
from lrface.config import Params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, help="identity-loss weight (default: train.alpha)")
    p.add_argument("--name", help="run name (default: srnet-alpha<alpha>); the same name resumes")


KEEP = ("step", "train/samples_per_s", "train/data_share",
        *(f"{k}/{m}_{s}" for s in ("7x6", "14x12", "28x24") for m in ("idcos", "psnr") for k in ("val", "val_bicubic")))


def train(params: Params, alpha: float | None = None, name: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one SRNet; a summary of what was trained, where and how well."""
    from lrface.train.job import run_training

    out = run_training(params, alpha, name, progress=progress)
    return {"alpha": alpha, "name": out.name, "model": str(out.model_path), "run_id": out.mlflow_run_id,
            "version": out.model_version, "step": out.metrics.get("step"),
            "metrics": {k: out.metrics[k] for k in KEEP if k in out.metrics}}


def init_model(params: Params) -> dict[str, Any]:
    """Write ``models/srnet-init``, the seeded random SRNet sweep members may start from."""
    from lrface.train.warm_start import write_init_model

    return {"model": str(write_init_model(params))}


def run(args: argparse.Namespace) -> int:
    out = train(params_from_args(args), args.alpha, args.name)
    print(json.dumps({"name": out["name"], "model": out["model"], "mlflow_run_id": out["run_id"],
                      "model_version": out["version"], "metrics": out["metrics"]}, indent=2))
    return 0
