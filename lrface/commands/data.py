"""``lrface align`` and ``lrface shards``: the two data stages of one dataset."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lrface.commands import params_from_args
from lrface.config import Params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="a key of data.datasets in params.yaml")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def align(params: Params, dataset: str, progress: bool = True) -> dict[str, Any]:
    """Detect and align every image of ``dataset`` (Ray Data actors); the stage's summary."""
    from lrface.data.align_stage import run_align

    return run_align(params, dataset, progress=progress)


def shards(params: Params, dataset: str) -> dict[str, Any]:
    """Degrade ``dataset``'s aligned faces into verified Parquet shards; their manifest."""
    from lrface.data.shard_stage import run_shards

    return run_shards(params, dataset)


def run_align(args: argparse.Namespace) -> int:
    summary = align(params_from_args(args), args.dataset, progress=not args.no_progress)
    keys = ("dataset", "counts", "detection_rate", "faces_per_second")
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    if "landmarks_vs_reference" in summary:
        print("landmarks vs reference:", json.dumps(summary["landmarks_vs_reference"]))
    return 0


def run_shards(args: argparse.Namespace) -> int:
    m = shards(params_from_args(args), args.dataset)
    print(json.dumps({"dataset": m["dataset"], "counts": m["counts"], "splits": m["splits"],
                      "shards": len(m["shards"])}, indent=2))
    return 0
