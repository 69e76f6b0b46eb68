import copy

import pytest
import torch
import torch.nn.functional as F

from lrface.losses import JointLoss, content_loss, identity_loss, resize
from lrface.models import SRNet, SRNetConfig


def test_content_loss_hand_computed():
    # HR constant 0.5, SR constant 0.2 -> MR is constant 0.5 at any size -> L1 = 0.3.
    hr = torch.full((2, 3, 112, 96), 0.5)
    sr = torch.full((2, 3, 28, 24), 0.2)
    assert content_loss(sr, hr).item() == pytest.approx(0.3, abs=1e-6)
    # MR is HR downsampled to the SR size: an SR equal to that MR has zero loss.
    hr = torch.rand(1, 3, 112, 96)
    mr = resize(hr, (56, 48), "bicubic")
    assert content_loss(mr.clone(), hr).item() == pytest.approx(0.0, abs=1e-7)
    assert content_loss(mr + 0.1, hr).item() == pytest.approx(0.1, abs=1e-6)


def test_identity_loss_zero_for_same_face_and_range(frnet):
    hr = torch.rand(3, 3, 112, 96)
    assert identity_loss(frnet, hr.clone(), hr=hr).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.rand(3, 3, 112, 96)
    v = identity_loss(frnet, other, hr=hr).item()
    f1, f2 = frnet(other), frnet(hr)
    expected = (1 - F.cosine_similarity(f1, f2)).mean().item()
    assert v == pytest.approx(expected, abs=1e-5)
    assert 0.0 < v <= 2.0


def test_identity_loss_with_precomputed_features(frnet):
    hr = torch.rand(2, 3, 112, 96)
    sr = torch.rand(2, 3, 56, 48)
    a = identity_loss(frnet, sr, hr=hr)
    b = identity_loss(frnet, sr, hr_features=frnet(hr))
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        identity_loss(frnet, sr)


def test_joint_loss_is_the_papers_formula(frnet):
    """L = L1(SR, MR) + alpha * (1 - cos(f(ISR), f(HR))), written out here with plain torch ops."""
    from lrface.models.mobilefacenet import normalize_faces

    torch.manual_seed(0)
    hr = torch.rand(2, 3, 112, 96)
    sr = torch.rand(2, 3, 28, 24)
    mr = F.interpolate(hr, size=(28, 24), mode="bicubic", align_corners=False, antialias=True)
    isr = F.interpolate(sr, size=(112, 96), mode="bicubic", align_corners=False, antialias=True)
    with torch.no_grad():
        f_isr, f_hr = frnet.net(normalize_faces(isr)), frnet.net(normalize_faces(hr))
    expected = (sr - mr).abs().mean() + 0.5 * (1 - F.cosine_similarity(f_isr, f_hr, dim=1)).mean()
    parts = JointLoss(frnet, alpha=0.5)(sr, hr)
    assert parts.total.item() == pytest.approx(expected.item(), abs=1e-5)
    assert parts.identity.item() > 0.05  # random faces: the identity term matters in this check
    zero = JointLoss(None, alpha=0.0)(sr, hr)
    assert zero.total.item() == pytest.approx(content_loss(sr, hr).item())
    with pytest.raises(ValueError):
        JointLoss(None, alpha=0.5)


def test_gradients_reach_srnet_not_frnet_and_bn_stats_stay(frnet):
    srnet = SRNet(SRNetConfig(n_blocks=2)).train()
    loss_fn = JointLoss(frnet, alpha=0.5).train()  # .train() must not unfreeze FRNet
    assert not frnet.training and not frnet.net.training and not frnet.body.training
    buffers_before = copy.deepcopy(dict(frnet.named_buffers()))  # both copies: the published net and
    weights_before = copy.deepcopy(frnet.state_dict())  # the folded body that runs
    assert any(k.startswith("body.") for k in weights_before) and any(k.startswith("net.") for k in weights_before)
    opt = torch.optim.Adam(srnet.parameters(), lr=1e-3)
    hr = torch.rand(4, 3, 112, 96)
    lr_img = resize(hr, (14, 12), "bicubic")
    parts = loss_fn(srnet(lr_img), hr)
    opt.zero_grad()
    parts.total.backward()
    assert parts.identity.item() > 0
    grads = [p.grad for p in srnet.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in frnet.parameters())
    opt.step()
    for k, v in frnet.named_buffers():
        assert torch.equal(v, buffers_before[k]), k
    for k, v in frnet.state_dict().items():
        assert torch.equal(v, weights_before[k]), k


def test_identity_term_changes_srnet_gradient(frnet):
    torch.manual_seed(0)
    srnet = SRNet(SRNetConfig(n_blocks=1))
    hr = torch.rand(2, 3, 112, 96)
    lr_img = resize(hr, (7, 6), "bicubic")

    def grad_of(alpha):
        srnet.zero_grad()
        JointLoss(frnet if alpha else None, alpha=alpha)(srnet(lr_img), hr).total.backward()
        return srnet.head.parametrizations.weight.original1.grad.clone()

    assert not torch.allclose(grad_of(0.0), grad_of(0.5))


def test_resize_rejects_unknown_mode():
    with pytest.raises(ValueError, match="lanczos"):
        resize(torch.rand(1, 3, 8, 8), (4, 4), "lanczos")


def test_every_isr_resize_mode_reaches_the_face_size_in_evaluation_and_inference(frnet):
    """One way from an SR output to 112x96 (``lrface.losses.to_face_size``) for every mode the
    params allow; ``area`` and ``nearest`` used to crash evaluation and inference."""
    import numpy as np

    from lrface.inference import FaceVerifier, InferenceConfig
    from lrface.losses import RESIZE_MODES, to_face_size
    from lrface.models import SRNet
    from lrface.restoration import SRNetRestorer

    sr = torch.rand(2, 3, 56, 48) * 1.2 - 0.1
    lr = torch.rand(2, 3, 14, 12)
    for mode in RESIZE_MODES:
        face = to_face_size(sr, mode)
        assert face.shape == (2, 3, 112, 96) and float(face.min()) >= 0 and float(face.max()) <= 1
        assert SRNetRestorer(SRNet(), isr_resize=mode)(lr).shape == (2, 3, 112, 96)
        verifier = FaceVerifier(frnet, SRNet(), InferenceConfig(isr_resize=mode), {})
        faces = [np.random.default_rng(0).integers(0, 255, (14, 12, 3), dtype=np.uint8)] * 2
        x = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float().div(255)
        # one way from an SR output to 112x96: inference's restorer is evaluation's, with its isr_resize
        assert torch.equal(verifier.restorers["srnet"](x), SRNetRestorer(verifier.srnet, isr_resize=mode)(x))
