"""Real LFW pairs as surveillance-like frames: each face shrunk to a 14x12-sized face (by default)
inside a 120x160 frame, then verified by the full inference path (detection on the frame,
alignment, SRNet or bicubic, FRNet). Prints per-pair similarities and the decisions.

Usage: python bench/verify_examples.py [--srnet models:/lrface-srnet@champion] [--pairs 10]
       [--width 12] [--out frames/]   (--out keeps the frames, e.g. for `lrface verify A B`)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lrface.config import load_params
from lrface.data.align import read_landmarks_file
from lrface.data.degrade import small_face_frame
from lrface.data.images import load_rgb
from lrface.data.sources import read_lfw_pairs
from lrface.inference import InferenceError, load_verifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--srnet", default="")
    ap.add_argument("--pairs", type=int, default=10, help="same and as many different pairs (fold 1)")
    ap.add_argument("--width", type=float, default=12.0, help="aligned-crop width of each face, px")
    ap.add_argument("--out", help="keep the frames here")
    args = ap.parse_args()
    params = load_params(args.params)
    root = params.path("data_root") / "lfw"
    marks = read_landmarks_file(root / "reference_landmarks.txt")
    pairs = [p for p in read_lfw_pairs(root / "pairs.txt") if p.fold == 0]
    chosen = [p for p in pairs if p.same][: args.pairs] + [p for p in pairs if not p.same][: args.pairs]
    out = Path(args.out or tempfile.mkdtemp(prefix="lrface-frames-"))
    out.mkdir(parents=True, exist_ok=True)
    verifiers = {"bicubic": load_verifier(params, None), "srnet": load_verifier(params, args.srnet)}
    print(f"{len(chosen)} LFW pairs, faces {args.width:g} px wide in 120x160 frames ({out}); "
          f"SRNet: {verifiers['srnet'].model_name}")
    sims: dict[str, dict[bool, list[float]]] = {k: {True: [], False: []} for k in verifiers}
    right: dict[str, int] = dict.fromkeys(verifiers, 0)
    used: dict[str, str] = dict.fromkeys(verifiers, "none")
    for i, p in enumerate(chosen):
        paths = []
        for j, rel in enumerate((p.a, p.b)):
            frame, _ = small_face_frame(load_rgb(root / "lfw-deepfunneled" / rel), marks[rel], args.width, seed=i * 2 + j)
            paths.append(out / f"pair{i:02d}_{'same' if p.same else 'diff'}_{j}.png")
            Image.fromarray(frame).save(paths[-1])
        row = [f"{'same' if p.same else 'diff'} {p.a.split('/')[0]} / {p.b.split('/')[0]}"[:48]]
        for name, v in verifiers.items():
            try:
                r = v.verify(*paths)
                sims[name][p.same].append(r.similarity)
                right[name] += int(r.same == p.same)
                used[name] = f"{r.threshold:.3f} ({r.size})"
                row.append(f"{name} {r.similarity:+.3f} {'SAME' if r.same else 'diff'} ({r.a.size})")
            except InferenceError as e:
                row.append(f"{name} error: {e}")
        print(" | ".join(row))
    for name, s in sims.items():
        same, diff = np.array(s[True]), np.array(s[False])
        print(f"{name}: mean similarity same {same.mean():+.3f}, different {diff.mean():+.3f}; "
              f"{right[name]}/{len(chosen)} decided right; threshold at {verifiers[name].config.far:g} FAR: "
              f"{used[name]}")


if __name__ == "__main__":
    main()
