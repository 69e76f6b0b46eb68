"""``lrface train``: SRNet with the joint loss on Ray Train, tracked and registered in MLflow."""

from __future__ import annotations

import argparse
import json

from lrface.commands import params_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, help="identity-loss weight (default: train.alpha)")
    p.add_argument("--name", help="run name (default: srnet-alpha<alpha>); the same name resumes")


def run(args: argparse.Namespace) -> int:
    from lrface.train.job import run_training

    out = run_training(params_from_args(args), args.alpha, args.name)
    keep = ("step", "val/idcos_14x12", "val_bicubic/idcos_14x12", "val/psnr_14x12", "val_bicubic/psnr_14x12")
    print(json.dumps({"name": out.name, "model": str(out.model_path), "mlflow_run_id": out.mlflow_run_id,
                      "model_version": out.model_version,
                      "metrics": {k: out.metrics[k] for k in keep if k in out.metrics}}, indent=2))
    return 0
