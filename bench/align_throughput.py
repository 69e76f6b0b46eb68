"""Alignment throughput with 1 and 2 Ray workers, the torch MTCNN (``align.detector: torch``, the
default) beside the ``mtcnn`` package's TensorFlow one (the path before; needs the ``tf-reference``
extra) in one run; shard reads vs PNG folders; shards from S3.

Usage: python bench/align_throughput.py [--images 320] [--params params.yaml] [--reads-only]
       [--detectors tensorflow torch] [--workers 1 2]
Uses the first N images of the LFW pairs (real data under paths.data_root). Wall times include
Ray actor start-up (each actor imports its detector's framework and builds one MTCNN), as a user
sees them; the detector runs alternate (TF 1, torch 1, TF 2, torch 2) so a drifting load hits both.
The S3 rows start moto's S3 server on 127.0.0.1 (a real HTTP server process, no AWS) and read the
same shards through Ray Data from local files and from the bucket, side by side.
``--reads-only`` skips the MTCNN timing (faces aligned from the reference landmarks instead).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
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
    ap.add_argument("--reads-only", action="store_true")
    ap.add_argument("--detectors", nargs="+", default=["tensorflow", "torch"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lrface-bench-"))
    rows = []
    if args.reads_only:
        p = load_params(args.params, {"paths.work_dir": str(tmp / "w1"), "align.workers": 1,
                                      "data.datasets.lfw.limit": args.images,
                                      "data.datasets.lfw.landmarks_file": "lfw/reference_landmarks.txt"})
        run_align(p, "lfw", progress=False)
    if not args.reads_only:
        startup(args.params, args.detectors)
    runs = [] if args.reads_only else [(w, d) for w in args.workers for d in args.detectors]
    for workers, detector in runs:
        p = load_params(args.params, {"paths.work_dir": str(tmp / f"{detector}{workers}"),
                                      "align.workers": workers, "align.detector": detector,
                                      "data.datasets.lfw.limit": args.images,
                                      "data.datasets.lfw.fallback_landmarks": None})
        t = time.perf_counter()
        s = run_align(p, "lfw", progress=False)
        wall = time.perf_counter() - t
        rows.append((detector, workers, s["counts"]["in"], s["counts"]["aligned"], wall,
                     s.get("landmarks_vs_reference", {}).get("mean_px", float("nan"))))
        import ray

        ray.shutdown()  # the next measurement starts its own actors from cold
    print(f"\nalignment (MTCNN + warp), {args.images} LFW images, wall time incl. actor start-up")
    print(f"{'detector':<12}{'workers':>8}{'in':>6}{'aligned':>9}{'seconds':>9}{'faces/s':>9}{'vs ref px':>10}")
    for d, w, n, a, sec, px in rows:
        print(f"{d:<12}{w:>8}{n:>6}{a:>9}{sec:>9.1f}{n / sec:>9.1f}{px:>10.3f}")
    base = {w: n / sec for d, w, n, _, sec, _ in rows if d == args.detectors[0]}
    for d, w, n, _, sec, _ in rows:
        if d != args.detectors[0] and w in base:
            print(f"{d} vs {args.detectors[0]}, {w} worker(s): {n / sec / base[w]:.2f}x faces/s")

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
    s3_reads(shards, cols, tmp)


STARTUP = """
import resource, sys, time
t0 = time.perf_counter()
from lrface.config import load_params
from lrface.data.align import AlignConfig, Aligner
from lrface.data.datasets import data_path
p = load_params(sys.argv[1], {"align.detector": sys.argv[2]})
path = data_path(p, "lfw/lfw-deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
r = Aligner(AlignConfig.from_dict(p.section("align"))).align(path)
assert r.ok, r
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras"})
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, ",".join(heavy) or "-")
"""


def startup(params: str, detectors: list[str], repeats: int = 3) -> None:
    """What an alignment actor pays before its first face, in a fresh process: imports, building
    the detector, aligning one LFW image (median of ``repeats``), and its peak RSS."""
    import statistics

    print("\nalignment actor start-up: fresh process -> first aligned face (median of "
          f"{repeats}), peak RSS")
    print(f"{'detector':<12}{'seconds':>9}{'peak MiB':>10}  frameworks imported")
    for d in detectors:
        outs = [subprocess.run([sys.executable, "-c", STARTUP, params, d], capture_output=True, text=True,
                               check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.split()
                for _ in range(repeats)]
        print(f"{d:<12}{statistics.median(float(o[0]) for o in outs):>9.2f}"
              f"{statistics.median(float(o[1]) for o in outs):>10.0f}  {outs[-1][2]}")


def _ray_read(shards, cols: list[str]) -> tuple[int, float]:
    t = time.perf_counter()
    n = 0
    for batch in shards.ray_dataset(columns=["sample_id", *cols], verify=False).iter_batches(
            batch_size=64, batch_format="numpy"):
        for c in cols:
            torch.from_numpy(np.stack([np.array(Image.open(io.BytesIO(b)).convert("RGB")) for b in batch[c]]))
        n += len(batch["sample_id"])
    return n, time.perf_counter() - t


def s3_reads(shards, cols: list[str], tmp: Path) -> None:
    """The same shards through Ray Data from local files and from S3 (moto on loopback)."""
    from lrface.data.shards import ShardSet
    from lrface.ray_env import init_ray
    from lrface.storage import Workspace

    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", LRFACE_CACHE_DIR=str(tmp / "mirror"))
        _wait_port(port)
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bench")
        ws = Workspace.of("s3://bench/work")
        ws.local.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shards.dir, ws.local / "lfw" / "shards", dirs_exist_ok=True)
        t = time.perf_counter()
        ws.push("lfw/shards", last=("manifest.json",))
        t_push = time.perf_counter() - t
        shutil.rmtree(ws.local)
        t = time.perf_counter()
        ws.pull("lfw/shards")
        t_pull = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (ws.local / "lfw" / "shards").glob("*.parquet")) / 2**20
        remote = ShardSet(ws.local / "lfw" / "shards", remote=ws.uri_of("lfw/shards"))
        init_ray("local")
        _ray_read(shards, cols)  # warm-up: Ray Data's workers start once
        results = [("local Parquet files", *_ray_read(shards, cols)), ("S3 (moto, loopback)", *_ray_read(remote, cols))]
        print(f"\nshards through Ray Data (the training input path), {size:.1f} MiB, decoded to tensors")
        print(f"{'source':<28}{'seconds':>9}{'faces/s':>10}")
        for name, n, sec in results:
            print(f"{name:<28}{sec:>9.2f}{n / sec:>10.0f}")
        print(f"whole shard folder to/from S3 (driver mirror): push {t_push:.2f} s, pull {t_pull:.2f} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"moto server on port {port} did not start")


if __name__ == "__main__":
    main()
