"""lrface.allocator: glibc keeps freed memory; results are bitwise what they were."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tests.conftest import FRNET_CKPT, REPO

RUN = """
import sys, numpy as np, torch
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from lrface.allocator import keep_freed_memory
    assert keep_freed_memory() is True and keep_freed_memory() is True  # glibc here; once is enough
from lrface.checkpoints import load_frnet
f = load_frnet(sys.argv[2])
torch.manual_seed(0)
x = torch.rand(16, 3, 112, 96, requires_grad=True)
emb = f(x)
(1 - torch.nn.functional.cosine_similarity(emb, torch.randn(16, 128))).mean().backward()
big = torch.rand(64, 3, 112, 96)
with torch.inference_mode():
    out = f(big)
np.savez(sys.argv[3], emb=emb.detach().numpy(), grad=x.grad.numpy(), out=out.numpy())
"""


def test_keeping_freed_memory_changes_no_result(tmp_path):
    outs = {}
    for mode in ("default", "keep"):
        path = tmp_path / f"{mode}.npz"
        res = subprocess.run([sys.executable, "-c", RUN, mode, str(FRNET_CKPT), str(path)], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        outs[mode] = np.load(path)
    for key in ("emb", "grad", "out"):
        assert np.array_equal(outs["default"][key], outs["keep"][key]), key
