"""FRNet's arithmetic (frnet.precision): what auto picks, and bf16 features close to fp32 ones."""

from __future__ import annotations

import pytest
import torch

import lrface.models.precision as precision
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.models.precision import resolve_precision


@pytest.mark.parametrize(("native", "backward", "want"), [
    (True, False, "bf16"),   # forward passes on a bf16 CPU: about 2x faster
    (True, True, "fp32"),    # the identity loss's backward on a CPU: bf16 is no faster
    (False, False, "fp32"),
])
def test_auto_on_a_cpu(monkeypatch, native, backward, want):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", "cpu", backward=backward) == want
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu", True) == "bf16"
    with pytest.raises(ValueError, match="frnet.precision"):
        resolve_precision("fp16")


def test_bf16_features_match_fp32_and_stay_fp32(frnet):
    torch.manual_seed(0)
    faces = torch.rand(6, 3, 112, 96)
    bf16 = FrozenFRNet(frnet.net, "bf16")
    with torch.inference_mode():
        a, b = frnet(faces), bf16(faces)
    assert a.dtype == b.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert float(cos.min()) > 0.999 and not torch.equal(a, b)  # close, and really computed in bf16
    x = faces.clone().requires_grad_(True)
    bf16(x).sum().backward()  # gradients reach the input through the autocast region
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fp32 or bf16"):
        FrozenFRNet(frnet.net, "auto")
