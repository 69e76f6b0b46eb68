"""The second half of a probe's flip feature, two ways, side by side on LFW (clean probes): the
mirrored LR face restored by SRNet on its own (``concat(f(SR(x)), f(SR(hflip x)))``, what
evaluation and ``lrface verify`` do) against the restored face flipped (``concat(f(SR(x)),
f(hflip SR(x)))``, the release before). Plain-cosine 10-fold accuracy (the authors'
mean-subtracted one in brackets), the fold-paired difference with its standard error, and the
restore + embed time per probe.

Usage: python bench/flip_view.py MODEL.pt [MODEL.pt ...] [--params params.yaml] [--sizes 7x6,14x12]
Needs the LFW shards (``dvc repro shards@lfw``); the 112x96 features come from the evaluation's
cache when it has them. Probe features are computed afresh and neither cached nor tracked.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lrface.checkpoints import load_frnet, load_srnet
from lrface.config import load_params
from lrface.data.datasets import DatasetSpec, data_path, open_shards
from lrface.eval.lfw import LfwEvaluator, load_lfw
from lrface.hashing import sha256_file
from lrface.models.precision import resolve_precision
from lrface.restoration import Restorer, SRNetRestorer


class FlippedAfterRestoring:
    """``restorer`` treated as if it commuted with a mirror: the restored face is flipped."""

    mirror_equivariant = True

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer
        self.name = f"{restorer.name} (flipped after)"
        self.fingerprint = f"{restorer.fingerprint}-flipped-after"

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return self.restorer(lr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="SRNet checkpoints (srnet.pt)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sizes", default="7x6,14x12")
    args = ap.parse_args()
    params = load_params(args.params)
    fp = params.path("frnet_checkpoint")
    frnet = load_frnet(fp, precision=resolve_precision(params.get_dotted("frnet.precision", "auto")))
    spec = DatasetSpec.from_params(params, "lfw")
    data = load_lfw(open_shards(params, "lfw"), data_path(params, spec.pairs), spec.folds)
    ev = LfwEvaluator(frnet, data, f"{sha256_file(fp)}-{frnet.precision}",
                      cache_dir=params.path("work_dir") / "cache" / "features", progress=False)
    ev.hr_features()
    print(f"LFW, {len(data.pairs)} pairs, clean probes vs 112x96 gallery; FRNet {frnet.precision}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'model':<40}{'size':>7}{'flipped after':>22}{'mirror restored':>22}{'difference':>16}{'ms/probe':>14}")
    for path in args.models:
        own = SRNetRestorer(load_srnet(path), name=path)
        for size in args.sizes.split(","):
            cells, ms = [], []
            for r in (FlippedAfterRestoring(own), own):
                t = time.perf_counter()
                cells.append(ev.evaluate(r, size, cache=False))
                ms.append(1e3 * (time.perf_counter() - t) / len(np.unique(data.probe_rows)))
            d = 100 * (np.array(cells[1].fold_accuracies) - np.array(cells[0].fold_accuracies))
            acc = [f"{100 * c.acc:.2f} ({100 * c.acc_meansub:.2f})" for c in cells]
            print(f"{path[-40:]:<40}{size:>7}{acc[0]:>22}{acc[1]:>22}"
                  f"{d.mean():>+9.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f}{ms[0]:>7.1f} /{ms[1]:>5.1f}")


if __name__ == "__main__":
    main()
