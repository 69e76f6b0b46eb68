"""Verification latency and 1:N identify throughput on this CPU, SRNet vs bicubic, in one run.

* ms per pair, 28x24 probe vs 112x96 gallery, from aligned faces (real LFW pairs from the shards):
  restore the probe (SRNet x4 -> 112x96, or bicubic), FRNet flip features of probe and gallery,
  cosine; at batch 1 and batch 64. The SR share is printed beside FRNet's (SR should cost no
  more than the recognition it feeds).
* ms per pair end to end from frames (MTCNN detection on an upscaled frame + alignment + above),
  for 14x12-sized faces in 120x160 frames, batch 1: the ``mtcnn`` package's detector (TensorFlow,
  the path before the torch detector) and the torch MTCNN (lrface.data.detector, the path now)
  side by side in one run, with a check that both find the same faces.
* identify: top-5 search of 28x24 probes against a 5,000-face gallery (real LFW 112x96
  features): search alone, and with the probe's restoration + features.

Usage: python bench/verify_latency.py [--srnet PATH] [--pairs 64] [--repeats 3] [--end-to-end-only]
(``--end-to-end-only``: only the frames section, which needs no shards.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import median_ms

from lrface.checkpoints import load_frnet, load_srnet
from lrface.config import load_params
from lrface.data.datasets import open_shards
from lrface.data.shards import lr_column
from lrface.data.tensors import iter_face_batches
from lrface.models import SRNet, SRNetConfig
from lrface.restoration import Bicubic, SRNetRestorer, flip_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--srnet", help="SRNet checkpoint (default: <work_dir>/models/srnet-alpha0.5/srnet.pt)")
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gallery", type=int, default=5000)
    ap.add_argument("--end-to-end-only", action="store_true", help="only the frames section (no shards needed)")
    args = ap.parse_args()
    params = load_params(args.params)
    frnet = load_frnet(params.path("frnet_checkpoint"))
    ckpt = Path(args.srnet) if args.srnet else params.path("work_dir") / "models" / "srnet-alpha0.5" / "srnet.pt"
    srnet = load_srnet(ckpt) if ckpt.is_file() else SRNet(SRNetConfig.from_dict(params.section("model")))
    print(f"SRNet: {ckpt if ckpt.is_file() else 'untrained (same architecture; timing only)'}; "
          f"torch threads {torch.get_num_threads()}")
    if args.end_to_end_only:
        end_to_end(params, srnet, frnet, args.repeats)
        return
    shards = open_shards(params, params.section("evaluate").get("dataset", "lfw"))
    batch = next(iter_face_batches(shards, ["hr_png", lr_column("28x24")], max(args.pairs, 64), verify=False))
    hr, lr = batch["hr_png"], batch[lr_column("28x24")]
    methods = {"bicubic": Bicubic(), "srnet": SRNetRestorer(srnet)}
    rows = []
    for bs in (1, 64):
        p, g = lr[:bs], hr[:bs]
        f_ms = median_ms(lambda g=g: frnet.embed_flip(g), args.repeats) / bs  # one side's features
        for name, restore in methods.items():
            r_ms = median_ms(lambda p=p, restore=restore: restore(p), args.repeats) / bs

            def pair(p=p, g=g, restore=restore):
                a, b = flip_features(frnet, p, restore), frnet.embed_flip(g)
                return torch.nn.functional.cosine_similarity(a, b)

            rows.append((name, bs, median_ms(pair, args.repeats) / bs, r_ms, f_ms))
    print("\nms per verified pair, 28x24 probe vs 112x96 gallery (aligned faces)")
    print(f"{'method':<9}{'batch':>6}{'ms/pair':>9}{'restore ms/face':>17}{'FRNet ms/face':>15}")
    for name, bs, ms, r, f in rows:
        print(f"{name:<9}{bs:>6}{ms:>9.2f}{r:>17.2f}{f:>15.2f}")
    print("paper: 12.5 ms per 28x24 pair on a TITAN X GPU")

    end_to_end(params, srnet, frnet, args.repeats)

    feats = np.random.default_rng(0).normal(size=(args.gallery, 256)).astype(np.float32)
    cache = sorted((params.path("work_dir") / "cache" / "features").glob("hr-*.npy"))
    if cache:
        real = np.load(cache[0])
        real = real[np.abs(real).sum(1) > 0]
        feats = np.resize(real, (args.gallery, 256)) if len(real) < args.gallery else real[: args.gallery]
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    from lrface.inference.gallery import Gallery

    ids = [str(i) for i in range(len(feats))]
    gal = Gallery(Path("."), ids, ids, feats, ["112x96"] * len(ids), {}, 0, 0)
    q = flip_features(frnet, lr[:64], methods["srnet"]).numpy()
    search_ms = median_ms(lambda: gal.search(q, 5), args.repeats) / len(q)
    full_ms = median_ms(lambda: gal.search(flip_features(frnet, lr[:64], methods["srnet"]).numpy(), 5),
                        args.repeats) / len(q)
    print(f"\nidentify, top-5 against {len(feats)} gallery faces "
          f"({'real LFW features' if cache else 'random features'}), 64 probes at 28x24 with SRNet")
    print(f"search only: {search_ms:.3f} ms/probe ({1000 / search_ms:,.0f} probes/s)")
    print(f"restore + features + search: {full_ms:.2f} ms/probe ({1000 / full_ms:,.1f} probes/s)")


def interleaved_ms(calls: dict, repeats: int) -> dict:
    """Median ms of each call over ``repeats`` rounds, every round running each call once in turn
    (after one warm-up round), so a load that drifts during the run hits all of them alike."""
    import statistics
    import time

    times: dict = {k: [] for k in calls}
    for r in range(repeats + 1):
        for k, fn in calls.items():
            t = time.perf_counter()
            fn()
            if r:
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def end_to_end(params, srnet, frnet, repeats: int) -> None:
    """Frames with 14x12-sized faces -> detection -> alignment -> restoration -> features, with the
    TensorFlow MTCNN (previous path) and the torch MTCNN (current path) side by side."""
    import time

    from lrface.data.align import read_landmarks_file
    from lrface.data.degrade import small_face_frame
    from lrface.data.detector import TorchMTCNN
    from lrface.data.detector_tf import MTCNNDetector
    from lrface.data.images import load_rgb
    from lrface.inference import FaceVerifier, InferenceConfig

    root = params.path("data_root") / "lfw"
    marks = read_landmarks_file(root / "reference_landmarks.txt")
    rels = sorted(marks)[:2]
    frames = [small_face_frame(load_rgb(root / "lfw-deepfunneled" / r), marks[r], 12, seed=i)[0]
              for i, r in enumerate(rels)]
    cfg = InferenceConfig.from_dict({**(params.get("inference") or {}), "srnet": None, "threshold": 0.3})
    threads = torch.get_num_threads()
    detectors = {
        "mtcnn (TF, before)": lambda: MTCNNDetector(threads=threads, min_face_size=cfg.min_face_size),
        "torch MTCNN (now)": lambda: TorchMTCNN(threads=None, min_face_size=cfg.min_face_size,
                                                max_pixels=max(cfg.max_pixels, cfg.detect_max_pixels)),
    }
    found, build, dets = {}, {}, {}
    for dname, make in detectors.items():
        t = time.perf_counter()
        dets[dname] = make()
        build[dname] = time.perf_counter() - t
    calls = {}
    for dname, det in dets.items():
        for name, model in (("bicubic", None), ("srnet", srnet)):
            v = FaceVerifier(frnet, model, cfg, detector=det)
            calls[dname, name, "pair"] = lambda v=v: v.verify(frames[0], frames[1])
            calls[dname, name, "detect"] = lambda v=v: v.detect(frames)
        found[dname] = v.detect(frames)
    ms = interleaved_ms(calls, repeats)
    rows = {(d, m): (ms[d, m, "pair"], ms[d, m, "detect"]) for d, m, _ in calls}
    names = list(detectors)
    print("\nms per verified pair end to end (two 120x160 frames, 14x12-sized faces, batch 1; "
          "detection runs on the upscaled frame where MTCNN first finds the face; medians of "
          f"{repeats} runs, the two detectors' runs interleaved)")
    print(f"{'method':<9}" + "".join(f"{n + ' ms/pair':>30}{'(detect)':>10}" for n in names) + f"{'speed-up':>10}")
    for method in ("bicubic", "srnet"):
        cells = "".join(f"{rows[n, method][0]:>30.1f}{rows[n, method][1]:>10.1f}" for n in names)
        print(f"{method:<9}{cells}{rows[names[0], method][0] / rows[names[1], method][0]:>9.2f}x")
    print("detector construction in this process (s): "
          + ", ".join(f"{n} {build[n]:.2f}" for n in names))
    a, b = (found[n] for n in names)
    same = all(len(x) == len(y) and all(
        np.allclose(f.box, g.box, atol=0.05) and np.allclose(f.landmarks, g.landmarks, atol=0.05)
        for f, g in zip(x, y, strict=True)) for x, y in zip(a, b, strict=True))
    print(f"same faces from both detectors (boxes and landmarks within 0.05 px): {'yes' if same else 'NO'}; "
          f"faces per frame {[len(x) for x in b]}, found at upscale {[x[0].detect_upscale for x in b if x]}")


if __name__ == "__main__":
    main()
