"""Fixed geometric variants of aligned faces (lrface.data.augment): a pure function of sample id
and variant number, variant 0 the face itself, and the transform the one its parameters say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrface.data.augment import VariantJitter, face_variant, face_variants, variant_params
from lrface.data.tensors import faces_to_tensor
from lrface.train.config import TrainConfig


def _face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (112, 96, 3), dtype=np.uint8)


def test_variants_are_fixed_per_sample_and_number_and_zero_is_the_face():
    face, jitter = _face(), VariantJitter()
    assert np.array_equal(face_variant(face, "a", 0, jitter), face)
    one = face_variant(face, "a", 1, jitter)
    assert one.shape == face.shape and one.dtype == np.uint8
    assert np.array_equal(one, face_variant(face, "a", 1, jitter))  # the same variant every time
    assert not np.array_equal(one, face_variant(face, "a", 2, jitter))
    assert not np.array_equal(one, face_variant(face, "b", 1, jitter))
    params = [variant_params(str(i), 1, jitter) for i in range(200)]
    angle, scale, dx, dy = (np.array(p) for p in zip(*params, strict=True))
    assert np.abs(np.degrees(angle)).max() <= 5.0 and np.abs(scale - 1).max() <= 0.05
    assert max(np.abs(dx).max(), np.abs(dy).max()) <= 3.0
    assert np.degrees(angle).std() > 2.0 and dx.std() > 1.0  # spread over the ranges, not stuck


def test_a_variant_moves_the_face_as_its_parameters_say():
    """A bright dot away from the centre lands where rotation, scale and shift about the centre put it."""
    jitter = VariantJitter(rotate_deg=10.0, scale=0.1, shift_px=4.0)
    face = np.zeros((112, 96, 3), np.uint8)
    x0, y0 = 70.0, 30.0
    face[29:32, 69:72] = 255  # a 3x3 dot centred on pixel (70, 30), i.e. point (70.5, 30.5)
    for k in (1, 2, 3):
        angle, scale, dx, dy = variant_params("dot", k, jitter)
        out = face_variant(face, "dot", k, jitter).astype(float).sum(-1)
        ys, xs = np.nonzero(out > 0)
        w = out[ys, xs]
        got = np.array([(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5])
        cx, cy = 48.0, 56.0
        px, py = x0 + 0.5 - cx, y0 + 0.5 - cy
        want = np.array([cx + scale * (np.cos(angle) * px - np.sin(angle) * py) + dx,
                         cy + scale * (np.sin(angle) * px + np.cos(angle) * py) + dy])
        assert np.abs(got - want).max() < 0.5, (k, got, want)


def test_the_face_is_mirrored_where_a_variant_reaches_past_it():
    """No black corners (aligned test faces have none), even at the widest jitter allowed."""
    widest = VariantJitter(rotate_deg=15.0, scale=0.1, shift_px=8.0)
    flat = np.full((112, 96, 3), 200, np.uint8)
    for k in range(1, 20):
        assert face_variant(flat, str(k), k, widest).min() >= 195  # bicubic ringing only at the seams


def test_batch_variants_match_the_single_face_function():
    faces = [_face(i) for i in range(3)]
    batch, ids, jitter = faces_to_tensor(faces), ["x", "y", "z"], VariantJitter()
    assert torch.equal(face_variants(batch, ids, 0, jitter), batch)
    want = faces_to_tensor([face_variant(f, i, 2, jitter) for f, i in zip(faces, ids, strict=True)])
    assert torch.equal(face_variants(batch, ids, 2, jitter), want)


def test_bad_variant_params_fail_at_load_naming_the_param():
    with pytest.raises(ValueError, match="train.variants"):
        TrainConfig.from_dict({"variants": 0})
    with pytest.raises(ValueError, match="train.variants"):
        TrainConfig.from_dict({"variants": True})
    with pytest.raises(ValueError, match="train.variant_jitter"):
        TrainConfig.from_dict({"variant_jitter": {"rotate_deg": 90}})
    with pytest.raises(ValueError, match="train.variant_jitter"):
        TrainConfig.from_dict({"variant_jitter": {"rotate_deg": "5"}})
    with pytest.raises(ValueError, match="train.variant_jitter.shift"):
        TrainConfig.from_dict({"variant_jitter": {"shift": 2}})
    cfg = TrainConfig.from_dict({"variants": 3, "variant_jitter": {"scale": 0.02}})
    assert cfg.variant_jitter == VariantJitter(scale=0.02) and TrainConfig.from_dict(cfg.to_dict()) == cfg
