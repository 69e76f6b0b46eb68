"""Training throughput with 1 and 2 Ray Train workers (same global batch), and the share of
step time spent loading data (Ray Data shard -> PNG decode -> tensors). For alpha > 0 it runs
the identity loss both ways in one go: f(HR) recomputed every step (before) and looked up from
the precomputed HR features (after; the one-off feature pass is timed separately).

Usage: python bench/train_throughput.py [--steps 40] [--alphas 0,0.5] [--params params.yaml]
Needs the training shards (``lrface align/shards --dataset train``). Nothing is tracked.
"""

from __future__ import annotations

import argparse
import tempfile
import time

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
    runs = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        for cached in ((False, True) if alpha > 0 else (False,)):
            runs += [(alpha, cached, w) for w in (1, 2)]
    for alpha, cached, workers in runs:
        p = load_params(args.params, {
            "train.num_workers": workers, "train.steps": args.steps, "train.batch_size": args.batch,
            "train.log_every": args.steps // 2, "train.validate_every": 10**9,
            "train.checkpoint_every": args.steps, "train.storage_path": storage, "train.register": False,
            "train.hr_feature_cache": cached,
        })
        t0 = time.perf_counter()
        out = run_training(p, alpha=alpha, name=f"bench-a{alpha:g}-c{int(cached)}-w{workers}", track=False)
        m = out.metrics
        rows.append((alpha, cached, workers, m["train/samples_per_s"], m["train/data_share"],
                     time.perf_counter() - t0))
    print(f"\nSRNet training, global batch {args.batch}, last {args.steps // 2} of {args.steps} steps")
    print("f(HR): 'every step' = recomputed per batch (before); 'precomputed' = looked up (after)")
    print(f"{'alpha':>6}{'f(HR)':>13}{'workers':>9}{'samples/s':>11}{'data share':>12}{'job wall s':>12}")
    for alpha, cached, w, sps, share, wall in rows:
        how = "-" if alpha == 0 else ("precomputed" if cached else "every step")
        print(f"{alpha:>6g}{how:>13}{w:>9}{sps:>11.1f}{100 * share:>11.1f}%{wall:>12.1f}")


if __name__ == "__main__":
    main()
