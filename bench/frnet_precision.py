"""LFW accuracy with FRNet in fp32 and under bf16 autocast, side by side in one run: hr (112x96)
and bicubic at each probe size, plain-cosine 10-fold accuracy (the primary figure) and the
authors' mean-subtracted one, plus the time each precision took.

Usage: python bench/frnet_precision.py [--params params.yaml] [--sizes 7x6,14x12]
Needs the LFW shards (``dvc repro shards@lfw``). Nothing is cached or tracked.
"""

from __future__ import annotations

import argparse
import time

import torch

from lrface.checkpoints import load_frnet
from lrface.config import load_params
from lrface.data.datasets import DatasetSpec, data_path, open_shards
from lrface.eval.lfw import LfwEvaluator, load_lfw
from lrface.models.precision import cpu_has_native_bf16
from lrface.restoration import Bicubic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sizes", default="7x6,14x12")
    args = ap.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(torch.get_num_threads())
    spec = DatasetSpec.from_params(params, "lfw")
    data = load_lfw(open_shards(params, "lfw"), data_path(params, spec.pairs), spec.folds)
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    seconds: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        frnet = load_frnet(params.path("frnet_checkpoint"), precision=precision)
        ev = LfwEvaluator(frnet, data, precision, cache_dir=None, batch_size=32, progress=False)
        t0 = time.perf_counter()
        results = [ev.evaluate_hr(), *(ev.evaluate(Bicubic(), s, cache=False) for s in args.sizes.split(","))]
        seconds[precision] = time.perf_counter() - t0
        for r in results:
            rows.setdefault(f"{r.method} {r.size}", {})[precision] = (r.acc, r.acc_meansub, r.acc_std)
    print(f"LFW {len(data.pairs)} pairs, 10-fold accuracy (%); native bf16 on this CPU: {cpu_has_native_bf16()}")
    print(f"{'cell':<16}{'fp32':>8}{'bf16':>8}{'diff':>7}{'fold std':>10}   (mean-subtracted: fp32 / bf16)")
    for cell, by in rows.items():
        (a32, m32, s32), (a16, m16, _) = by["fp32"], by["bf16"]
        print(f"{cell:<16}{100 * a32:>8.2f}{100 * a16:>8.2f}{100 * (a16 - a32):>+7.2f}{100 * s32:>10.2f}"
              f"   ({100 * m32:.2f} / {100 * m16:.2f})")
    print(f"time: fp32 {seconds['fp32']:.0f} s, bf16 {seconds['bf16']:.0f} s "
          f"({seconds['fp32'] / seconds['bf16']:.2f}x)")


if __name__ == "__main__":
    main()
