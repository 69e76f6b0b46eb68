"""``lrface info``: the configured models and their sizes."""

from __future__ import annotations

import argparse
import json

from lrface.commands import params_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from lrface.checkpoints import load_mobilefacenet
    from lrface.models import SRNet, SRNetConfig, model_size

    params = params_from_args(args)
    cfg = SRNetConfig.from_dict(params.section("model"))
    sr = model_size(SRNet(cfg))
    ckpt = params.path("frnet_checkpoint")
    fr = model_size(load_mobilefacenet(ckpt))
    info = {
        "srnet": {"config": cfg.to_dict(), "params": sr.params, "mb": round(sr.megabytes, 3)},
        "frnet": {"checkpoint": str(ckpt), "params": fr.params, "mb": round(fr.megabytes, 3)},
        "data_root": str(params.path("data_root")),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"SRNet  {sr}  ({cfg.variant}, {cfg.n_blocks} blocks, {cfg.n_feats} feats x{cfg.expansion})")
        print(f"FRNet  {fr}  ({ckpt})")
        print(f"data   {info['data_root']}")
    return 0
