"""What a training worker waits for at each epoch boundary: the training input as the release
before built it (every epoch re-reads the shards, then shuffles) beside this one's (the shards read
once, each epoch only re-shuffled), side by side in one run.

Usage: python bench/epoch_boundary.py [--epochs 4] [--workers 2] [--batch 16] [--params params.yaml]
Needs the training shards (``lrface align/shards --dataset train``). Two Ray actors consume the
dataset through ``streaming_split`` as Ray Train's workers do, doing no work between batches, so
the times are the input path's alone: the wait for each epoch's first batch, and the whole epoch.
"""

from __future__ import annotations

import argparse
import time

import ray

from lrface.config import load_params
from lrface.data.datasets import open_shards
from lrface.data.shards import lr_column
from lrface.ray_env import init_ray
from lrface.sizes import FACTOR_SIZES
from lrface.train.config import train_config


@ray.remote(num_cpus=1)
class Consumer:
    """One "training worker": per epoch, the wait for its first batch, the epoch's time, its rows."""

    def epochs(self, it, n: int, batch: int) -> list[tuple[float, float, int]]:
        out = []
        for _ in range(n):
            t, first, rows = time.perf_counter(), float("nan"), 0
            for b in it.iter_batches(batch_size=batch, batch_format="numpy", drop_last=True):
                if rows == 0:
                    first = time.perf_counter() - t
                rows += len(b["sample_id"])
            out.append((first, time.perf_counter() - t, rows))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="rows per worker batch")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg = train_config(params, alpha=0.5)
    shards = open_shards(params, cfg.dataset)
    init_ray("local", num_cpus=args.workers + 1)  # as a training: one CPU per worker, one for data
    ray.data.DataContext.get_current().enable_progress_bars = False
    columns = ["sample_id", "hr_png", *(lr_column(FACTOR_SIZES[f]) for f in cfg.factors)]

    def now():  # exactly what a training passes to Ray Train (the build includes the one read)
        return shards.ray_dataset(columns=columns, verify=False, split="train", num_cpus=0, shuffle_seed=cfg.seed)

    def before():  # the release before: the read is part of every epoch's execution
        return shards.ray_dataset(columns=columns, verify=False, split="train", num_cpus=0).random_shuffle(
            seed=ray.data.RandomSeedConfig(seed=cfg.seed, reseed_after_execution=True))

    print(f"training input, {args.workers} consumers x batch {args.batch}, {args.epochs} epochs "
          f"({shards.dir})")
    print(f"{'input path':<34}{'build s':>8}{'epoch':>6}{'1st batch s':>12}{'epoch s':>9}{'rows':>7}")
    for name, build in (("re-read every epoch (before)", before), ("read once, re-shuffled (now)", now)):
        t = time.perf_counter()
        ds = build()
        built = time.perf_counter() - t
        consumers = [Consumer.remote() for _ in range(args.workers)]
        splits = ds.streaming_split(args.workers, equal=True)
        res = ray.get([c.epochs.remote(it, args.epochs, args.batch) for c, it in zip(consumers, splits, strict=True)])
        for e in range(args.epochs):
            first = max(r[e][0] for r in res)  # the slowest worker holds the others at the next step
            total = max(r[e][1] for r in res)
            rows = sum(r[e][2] for r in res)
            print(f"{name if e == 0 else '':<34}{built if e == 0 else float('nan'):>8.2f}{e:>6}{first:>12.2f}"
                  f"{total:>9.2f}{rows:>7}")
        for c in consumers:
            ray.kill(c)


if __name__ == "__main__":
    main()
