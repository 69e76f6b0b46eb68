"""Training throughput (samples/s) and the share of step time spent loading data (Ray Data
shard -> PNG decode -> tensors, plus the camera chain with ``train.degradation: surveillance``),
side by side in one run: clean vs camera-chain LR faces; for alpha > 0, FRNet in fp32 and under
bf16 autocast (``frnet.precision``), with f(HR) recomputed every step or precomputed once.

Usage: python bench/train_throughput.py [--steps 40] [--alphas 0,0.5] [--workers 2]
           [--precisions fp32,bf16] [--degradations bicubic,surveillance] [--params params.yaml]
Needs the training shards (``lrface align/shards --dataset train``). Nothing is tracked.
torch.compile is measured per forward/backward in bench/model_size.py (its compile time alone
exceeds a short training's budget here).
"""

from __future__ import annotations

import argparse
import shutil
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
    ap.add_argument("--workers", default="2", help="comma-separated worker counts")
    ap.add_argument("--precisions", default="fp32,bf16", help="FRNet precisions for alpha > 0")
    ap.add_argument("--degradations", default="bicubic,surveillance", help="train.degradation values")
    ap.add_argument("--every-step", action="store_true", help="also recompute f(HR) every step")
    args = ap.parse_args()
    storage = tempfile.mkdtemp(prefix="lrface-bench-train-")
    rows = []
    runs = []
    for degradation in args.degradations.split(","):
        for alpha in [float(a) for a in args.alphas.split(",")]:
            for precision in (args.precisions.split(",") if alpha > 0 else ["-"]):
                for cached in ((False, True) if alpha > 0 and args.every_step else (True,)):
                    runs += [(degradation, alpha, precision, cached, int(w)) for w in args.workers.split(",")]
    for degradation, alpha, precision, cached, workers in runs:
        p = load_params(args.params, {
            "train.num_workers": workers, "train.steps": args.steps, "train.batch_size": args.batch,
            "train.log_every": args.steps // 2, "train.validate_every": 10**9,
            "train.checkpoint_every": args.steps, "train.storage_path": storage, "train.register": False,
            "train.hr_feature_cache": cached, "train.sweep": {},  # every run from its own seeded init
            "train.degradation": degradation,
            "frnet.precision": "fp32" if precision == "-" else precision,
        })
        t0 = time.perf_counter()
        out = run_training(p, alpha=alpha, name=f"bench-{degradation}-a{alpha:g}-{precision}-c{int(cached)}-w{workers}",
                           track=False)
        m = out.metrics
        shutil.rmtree(out.model_path.parent)  # <work_dir>/models feeds the evaluate stage: leave it as it was
        rows.append((degradation, alpha, precision, cached, workers, m["train/samples_per_s"], m["train/data_share"],
                     time.perf_counter() - t0))
    print(f"\nSRNet training, global batch {args.batch}, last {args.steps // 2} of {args.steps} steps")
    print("f(HR): 'every step' = recomputed per batch; 'precomputed' = looked up (the default)")
    print("LR faces: 'bicubic' = the shards' clean ones; 'surveillance' = the camera chain per sample and step")
    print(f"{'LR faces':>13}{'alpha':>6}{'FRNet':>7}{'f(HR)':>13}{'workers':>9}{'samples/s':>11}{'data share':>12}"
          f"{'job wall s':>12}")
    for degradation, alpha, precision, cached, w, sps, share, wall in rows:
        how = "-" if alpha == 0 else ("precomputed" if cached else "every step")
        print(f"{degradation:>13}{alpha:>6g}{precision:>7}{how:>13}{w:>9}{sps:>11.1f}{100 * share:>11.1f}%"
              f"{wall:>12.1f}")


if __name__ == "__main__":
    main()
