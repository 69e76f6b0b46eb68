import numpy as np
import pytest
from PIL import Image

from lrface.data.degrade import (
    DegradeConfig,
    SurveillanceConfig,
    camera_chain,
    downsample,
    draw_scale,
    make_lr,
    scale_size,
    surveillance_degrade,
)
from lrface.sizes import parse_size


def _face(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (112, 96, 3), dtype=np.uint8)


def test_default_sizes_and_pil_bicubic():
    face = _face()
    lr = make_lr(face, DegradeConfig())
    assert {k: v.shape for k, v in lr.items()} == {
        "28x24": (28, 24, 3), "14x12": (14, 12, 3), "7x6": (7, 6, 3), "16x16": (16, 16, 3)
    }
    expected = np.array(Image.fromarray(face).resize((12, 14), Image.Resampling.BICUBIC))
    assert np.array_equal(lr["14x12"], expected)
    # anti-aliased: a 1-px checkerboard averages to grey instead of aliasing
    checker = ((np.indices((112, 96)).sum(0) % 2) * 255).astype(np.uint8)
    small = downsample(np.stack([checker] * 3, -1), (7, 6))
    assert np.abs(small.astype(int) - 128).max() < 20


def test_surveillance_is_seeded_and_differs_from_clean():
    face = _face(2)
    surv = SurveillanceConfig(seed=3, noise_sigma=(4.0, 8.0))
    clean = make_lr(face, DegradeConfig())
    a = {k: surveillance_degrade(face, parse_size(k), surv, "id/1") for k in clean}
    b = {k: surveillance_degrade(face, parse_size(k), surv, "id/1") for k in clean}
    c = {k: surveillance_degrade(face, parse_size(k), surv, "id/2") for k in clean}
    for k in a:
        assert np.array_equal(a[k], b[k]) and a[k].shape == clean[k].shape
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert all(not np.array_equal(a[k], clean[k]) for k in a)


def test_config_from_dict_validates():
    cfg = DegradeConfig.from_dict({"sizes": ["14x12"], "kernel": "bicubic",
                                   "surveillance": {"enabled": False, "blur_sigma": [0.5, 1.0]}})
    assert cfg.sizes == ("14x12",) and cfg.surveillance.blur_sigma == (0.5, 1.0)
    with pytest.raises(ValueError, match=r"degrade\.surveillance\.enabled .* was removed: use train\.degradation"):
        DegradeConfig.from_dict({"surveillance": {"enabled": True}})
    with pytest.raises(ValueError, match="kernel"):
        DegradeConfig.from_dict({"kernel": "magic"})
    with pytest.raises(ValueError, match="unknown"):
        DegradeConfig.from_dict({"sizez": []})
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("fourteen")


def test_camera_chain_draws_each_effect_from_its_rng():
    face = _face(4)
    cfg = SurveillanceConfig(color_prob=1.0, blur_prob=1.0, motion_prob=1.0, jpeg_prob=1.0, noise_sigma=(3.0, 6.0))
    a = camera_chain(face, (14, 12), cfg, np.random.default_rng(7))
    assert a.shape == (14, 12, 3) and a.dtype == np.uint8
    assert np.array_equal(a, camera_chain(face, (14, 12), cfg, np.random.default_rng(7)))
    assert not np.array_equal(a, camera_chain(face, (14, 12), cfg, np.random.default_rng(8)))
    clean = downsample(face, (14, 12))
    off = SurveillanceConfig(color_prob=0.0, blur_prob=0.0, motion_prob=0.0, jpeg_prob=0.0, noise_sigma=(0.0, 0.0))
    assert np.array_equal(camera_chain(face, (14, 12), off, np.random.default_rng(7)), clean)  # all off: bicubic
    assert np.abs(a.astype(int) - clean.astype(int)).mean() > 2  # all on: visibly another face


def test_scales_are_log_uniform_within_the_range_and_sizes_follow():
    rng = np.random.default_rng(0)
    scales = np.array([draw_scale((4.0, 16.0), rng) for _ in range(4000)])
    assert scales.min() >= 4.0 and scales.max() <= 16.0
    assert abs(np.mean(scales < 8.0) - 0.5) < 0.03  # x4-x8 as likely as x8-x16
    assert len({scale_size(s) for s in scales}) > 10  # not just three sizes
    assert scale_size(4.0) == (28, 24) and scale_size(8.0) == (14, 12) and scale_size(16.0) == (7, 6)
    assert scale_size(200.0) == (1, 1)
