"""Flip features through a restoration: the mirrored face is restored on its own where the
restoration does not commute with a mirror (SRNet), and flipped after restoring where it does."""

from __future__ import annotations

import torch

from lrface.models.srnet import SRNet, SRNetConfig
from lrface.restoration import Bicubic, SRNetRestorer, flip_features


def _faces(h: int, w: int) -> torch.Tensor:
    return torch.rand(3, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_srnet_features_restore_the_mirrored_face_on_its_own(frnet):
    torch.manual_seed(0)
    restorer = SRNetRestorer(SRNet(SRNetConfig(n_feats=8, n_blocks=1)))
    lr = _faces(28, 24)
    feat = flip_features(frnet, lr, restorer)
    assert feat.shape == (3, 256)
    want = torch.cat([frnet(restorer(lr)), frnet(restorer(lr.flip(-1)))], dim=1)
    torch.testing.assert_close(feat, want, rtol=0, atol=1e-5)
    # SRNet does not commute with a mirror, so this is not the restored face flipped
    flipped_after = frnet.embed_flip(restorer(lr))
    assert (feat[:, 128:] - flipped_after[:, 128:]).abs().max() > 1e-3
    torch.testing.assert_close(feat[:, :128], flipped_after[:, :128], rtol=0, atol=1e-5)


def test_bicubic_and_hr_features_flip_after_restoring_which_is_the_same(frnet):
    lr = _faces(14, 12)
    feat = flip_features(frnet, lr, Bicubic())
    torch.testing.assert_close(feat, frnet.embed_flip(Bicubic()(lr)), rtol=0, atol=0)
    # bicubic commutes with the mirror: restoring the mirror on its own gives the same feature
    mirrored = torch.cat([frnet(Bicubic()(lr)), frnet(Bicubic()(lr.flip(-1)))], dim=1)
    torch.testing.assert_close(feat, mirrored, rtol=0, atol=1e-3)
    hr = _faces(112, 96)
    torch.testing.assert_close(flip_features(frnet, hr), frnet.embed_flip(hr), rtol=0, atol=0)
