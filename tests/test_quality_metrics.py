"""PSNR and SSIM of the validator, against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from lrface.train.metrics import psnr, ssim


def test_psnr_of_a_constant_error_is_known():
    x = torch.full((2, 3, 16, 16), 0.5)
    assert psnr(x + 0.1, x).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # mse 0.01
    assert psnr(x + 0.01, x).tolist() == pytest.approx([40.0, 40.0], abs=1e-3)
    assert psnr(x, x).tolist() == pytest.approx([100.0, 100.0])  # mse floored at 1e-10


def test_ssim_identity_luminance_and_noise():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 28, 24)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    # two flat images: only the luminance term is left, (2ab + c1) / (a^2 + b^2 + c1)
    a, b, c1 = 0.5, 0.25, 0.01**2
    flat = ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)).item()
    assert flat == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-5)
    noisy = [ssim((x + s * torch.randn_like(x)).clamp(0, 1), x).item() for s in (0.02, 0.1, 0.3)]
    assert noisy[0] > noisy[1] > noisy[2]
    assert ssim(torch.rand(1, 3, 7, 6), torch.rand(1, 3, 7, 6)).shape == (1,)  # window shrinks to fit
