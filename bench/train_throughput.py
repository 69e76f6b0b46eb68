"""Training throughput with 1 and 2 Ray Train workers (same global batch), and the share of
step time spent loading data (Ray Data shard -> PNG decode -> tensors).

Usage: python bench/train_throughput.py [--steps 40] [--alpha 0.5] [--params params.yaml]
Needs the training shards (``lrface align/shards --dataset train``). Nothing is tracked.
"""

from __future__ import annotations

import argparse
import tempfile

from lrface.config import load_params
from lrface.train.job import run_training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--alphas", default="0,0.5")
    args = ap.parse_args()
    storage = tempfile.mkdtemp(prefix="lrface-bench-train-")
    rows = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        for workers in (1, 2):
            p = load_params(args.params, {
                "train.num_workers": workers, "train.steps": args.steps, "train.batch_size": args.batch,
                "train.log_every": args.steps // 2, "train.validate_every": 10**9,
                "train.checkpoint_every": args.steps, "train.storage_path": storage, "train.register": False,
            })
            out = run_training(p, alpha=alpha, name=f"bench-a{alpha:g}-w{workers}", track=False)
            m = out.metrics
            rows.append((alpha, workers, m["train/samples_per_s"], m["train/data_share"]))
    print(f"\nSRNet training, global batch {args.batch}, last {args.steps // 2} of {args.steps} steps")
    print(f"{'alpha':>6}{'workers':>9}{'samples/s':>11}{'data share':>12}")
    for alpha, w, sps, share in rows:
        print(f"{alpha:>6g}{w:>9}{sps:>11.1f}{100 * share:>11.1f}%")


if __name__ == "__main__":
    main()
