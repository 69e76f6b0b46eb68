"""Alignment throughput with 1 and 2 Ray workers, and shard read throughput vs PNG folders.

Usage: python bench/align_throughput.py [--images 320] [--params params.yaml]
Uses the first N images of the LFW pairs (real data under paths.data_root). Wall times include
Ray actor start-up (each actor imports TensorFlow and builds one MTCNN), as a user sees them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrface.config import load_params
from lrface.data.align_stage import run_align
from lrface.data.datasets import open_shards
from lrface.data.shard_stage import run_shards
from lrface.data.tensors import iter_face_batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--images", type=int, default=320)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lrface-bench-"))
    rows = []
    for workers in (1, 2):
        p = load_params(args.params, {"paths.work_dir": str(tmp / f"w{workers}"), "align.workers": workers,
                                      "data.datasets.lfw.limit": args.images,
                                      "data.datasets.lfw.fallback_landmarks": None})
        t = time.perf_counter()
        s = run_align(p, "lfw", progress=False)
        wall = time.perf_counter() - t
        rows.append((workers, s["counts"]["in"], s["counts"]["aligned"], wall))
        import ray

        ray.shutdown()  # the next measurement starts its own actors from cold
    print(f"\nalignment (MTCNN + warp), {args.images} LFW images, wall time incl. actor start-up")
    print(f"{'workers':>8}{'in':>6}{'aligned':>9}{'seconds':>9}{'faces/s':>9}")
    for w, n, a, sec in rows:
        print(f"{w:>8}{n:>6}{a:>9}{sec:>9.1f}{n / sec:>9.1f}")

    run_shards(p, "lfw")
    shards = open_shards(p, "lfw")
    cols = ["hr_png", "lr_14x12_png"]
    t = time.perf_counter()
    n_shard = sum(len(b["sample_id"]) for b in iter_face_batches(shards, cols, batch_size=64))
    t_shard = time.perf_counter() - t
    folder = tmp / "png"
    table = shards.read_table(["sample_id", *cols])
    for i, sid in enumerate(table.column("sample_id").to_pylist()):
        d = folder / sid.replace("/", "_")
        d.mkdir(parents=True, exist_ok=True)
        for c in cols:
            (d / f"{c}.png").write_bytes(table.column(c)[i].as_py())
    t = time.perf_counter()
    n_png = 0
    for d in sorted(folder.iterdir()):
        for c in cols:
            arr = np.array(Image.open(d / f"{c}.png").convert("RGB"))
            torch.from_numpy(arr).permute(2, 0, 1).float().div(255)
        n_png += 1
    t_png = time.perf_counter() - t
    print(f"\nreading {n_shard} faces (HR 112x96 + LR 14x12) into torch tensors, one process")
    print(f"{'source':<28}{'seconds':>9}{'faces/s':>10}")
    print(f"{'Parquet shards (verified)':<28}{t_shard:>9.2f}{n_shard / t_shard:>10.0f}")
    print(f"{'PNG files in folders':<28}{t_png:>9.2f}{n_png / t_png:>10.0f}")


if __name__ == "__main__":
    main()
