"""FRNet with glibc's default allocator against ``lrface.allocator.keep_freed_memory``, side by
side in one run, each in a fresh process: the identity loss's forward + backward (batch 16, one
thread, as a training worker runs it) and evaluation's forward (batch 64). Wall, user and system
CPU seconds per batch; system time is the page faults of freshly mapped memory.

Usage: python bench/allocator.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from lrface.config import load_params

RUN = """
import os, sys, time, torch
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from lrface.allocator import keep_freed_memory
    keep_freed_memory()
from lrface.checkpoints import load_frnet
f = load_frnet(sys.argv[2])
n = int(sys.argv[3])
x, t, big = torch.rand(16, 3, 112, 96), torch.randn(16, 128), torch.rand(64, 3, 112, 96)

def train_step():
    xi = x.clone().requires_grad_(True)
    (1 - torch.nn.functional.cosine_similarity(f(xi), t)).mean().backward()

def forward():
    with torch.inference_mode():
        f(big)

for fn in (train_step, forward):
    fn()
    a, w = os.times(), time.perf_counter()
    for _ in range(n):
        fn()
    b = os.times()
    print(fn.__name__, (time.perf_counter() - w) / n, (b.user - a.user) / n, (b.system - a.system) / n)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    ckpt = str(load_params(args.params).path("frnet_checkpoint"))
    rows = []
    for mode in ("default", "keep"):  # alternated twice, so a drifting load hits both
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", RUN, mode, ckpt, str(args.repeats)], capture_output=True,
                                 text=True, check=True).stdout.split("\n")
            rows += [(mode, *line.split()) for line in out if line.strip()]
    print(f"FRNet, ms per batch, median-free mean of {args.repeats} after one warm-up, two processes each")
    print(f"{'allocator':<10}{'what':<28}{'wall':>9}{'user':>9}{'system':>9}")
    for mode, what, wall, user, sys_ in rows:
        label = "fwd+bwd, batch 16" if what == "train_step" else "forward, batch 64"
        print(f"{mode:<10}{label:<28}{1000 * float(wall):>9.0f}{1000 * float(user):>9.0f}{1000 * float(sys_):>9.0f}")


if __name__ == "__main__":
    main()
