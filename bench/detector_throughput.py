"""Face detection throughput: the ``mtcnn`` package (TensorFlow, today's align stage) vs the torch
MTCNN (lrface.data.detector), side by side, on real LFW images.

Each detector runs in ``--workers`` fresh processes (spawned, one thread each, as the align stage's
Ray actors run), one after the other so the two never compete. Per worker: the seconds to import
and build the detector in a fresh process; then all workers start together (a barrier) and each
detects its share of the images in batches of ``--batch`` (LFW images share one shape, so a batch
is one pass, as in ``Aligner.align_many``). Decoding is done before the barrier and not timed.

Usage: python bench/detector_throughput.py [--images 200] [--workers 2] [--batch 16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

DETECTORS = {"mtcnn (TF)": "tf", "torch MTCNN": "torch"}


def _worker(kind: str, files: list[str], batch: int, barrier, results) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    t = time.perf_counter()
    if kind == "tf":
        from lrface.data.detector_tf import MTCNNDetector

        det = MTCNNDetector(threads=1)
    else:
        from lrface.data.detector import TorchMTCNN

        det = TorchMTCNN(threads=1)  # sets torch's threads
    build_s = time.perf_counter() - t
    from lrface.data.images import load_rgb

    images = [load_rgb(f) for f in files]
    det.detect_batch(images[:1])  # warm-up (first-call allocations), not timed
    barrier.wait()
    t = time.perf_counter()
    faces = sum(len(found) for s in range(0, len(images), batch) for found in det.detect_batch(images[s : s + batch]))
    results.put((build_s, time.perf_counter() - t, len(images), faces))


def run(kind: str, files: list[str], workers: int, batch: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(kind, files[w::workers], batch, barrier, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    t = time.perf_counter()
    rows = [results.get() for _ in procs]
    wall = time.perf_counter() - t
    for p in procs:
        p.join()
    n = sum(r[2] for r in rows)
    faces = sum(r[3] for r in rows)
    return {"build_s": max(r[0] for r in rows), "wall_s": wall, "images": n, "faces": faces,
            "images_per_s": n / wall, "faces_per_s": faces / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("LRFACE_DATA_ROOT", "../shared/data"))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    everything = sorted((Path(args.data_root) / "lfw" / "lfw-deepfunneled").glob("*/*.jpg"))
    if not everything:
        raise SystemExit(f"no LFW images under {args.data_root}/lfw/lfw-deepfunneled")
    step = max(1, len(everything) // args.images)
    files = [str(f) for f in everything[::step][: args.images]]
    res = {name: run(kind, files, args.workers, args.batch) for name, kind in DETECTORS.items()}
    print(f"\nface detection, {len(files)} LFW images (250x250), {args.workers} worker processes x 1 thread, "
          f"batches of {args.batch}; {os.cpu_count()} CPUs on this machine")
    names = list(res)
    print(f"{'':<34}" + "".join(f"{n:>16}" for n in names))
    for key, label, fmt in (("build_s", "import + build, fresh process (s)", "{:>16.2f}"),
                            ("wall_s", "detection wall time (s)", "{:>16.2f}"),
                            ("images_per_s", "images/s", "{:>16.1f}"),
                            ("faces", "faces found", "{:>16d}"),
                            ("faces_per_s", "faces/s", "{:>16.1f}")):
        print(f"{label:<34}" + "".join(fmt.format(res[n][key]) for n in names))
    a, b = (res[n]["images_per_s"] for n in names)
    print(f"speed-up of {names[1]} over {names[0]}: x{b / a:.2f}")


if __name__ == "__main__":
    main()
