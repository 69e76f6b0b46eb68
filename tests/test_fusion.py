"""BatchNorm folded into the conv before it (lrface.models.fusion), as the frozen FRNet runs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lrface.checkpoints import load_frnet, load_mobilefacenet
from lrface.models.fusion import fold_all_batchnorms, fold_batchnorm
from lrface.models.mobilefacenet import normalize_faces
from lrface.train import hr_features


def _random_bn(channels: int, gen: torch.Generator) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels).double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(channels, generator=gen, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.randn(channels, generator=gen, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(channels, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(channels, generator=gen, dtype=torch.float64) + 0.1)
    return bn


@pytest.mark.parametrize("groups,bias", [(1, False), (8, False), (1, True)])
def test_folded_conv_is_conv_then_batchnorm(groups, bias):
    gen = torch.Generator().manual_seed(groups + bias)
    conv = nn.Conv2d(8, 8, 3, 2, 1, groups=groups, bias=bias).double()
    bn = _random_bn(8, gen)
    x = torch.randn(2, 8, 11, 9, generator=gen, dtype=torch.float64)
    fused = fold_batchnorm(conv, bn)
    assert fused.weight.dtype == torch.float64 and fused.bias is not None
    torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-12, atol=1e-12)


def test_frozen_frnet_runs_the_folded_network_with_the_same_features_and_gradients(frnet_ckpt):
    net = load_mobilefacenet(frnet_ckpt)
    frnet = load_frnet(frnet_ckpt)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frnet.body.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in frnet.net.modules()) == 50  # the published net, kept
    faces = torch.rand(4, 3, 112, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(frnet(faces), net(normalize_faces(faces)), rtol=1e-4, atol=1e-4)

    # in float64 the two are the same function, gradients to the input included
    ref = copy.deepcopy(net).double().requires_grad_(True)
    folded = fold_all_batchnorms(ref)
    grads = []
    for model in (ref, folded):
        x = faces.double().requires_grad_(True)
        model(normalize_faces(x)).square().sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-12)
    assert not any(p.requires_grad for p in folded.parameters())
    # the network folded is left as it was: trainable, its BN layers in place
    assert all(p.requires_grad for p in ref.parameters())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ref.modules()) == 50


def test_batchnorms_that_cannot_be_folded_are_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="not right after a conv"):
        fold_all_batchnorms(net)
    with pytest.raises(ValueError, match="no affine"):
        fold_batchnorm(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))


def test_hr_feature_cache_key_covers_the_code_that_computes_the_features(tiny, tmp_path, monkeypatch):
    from lrface.config import load_params
    from lrface.data.datasets import open_shards

    shards = open_shards(load_params(tiny), "train")
    before = hr_features.features_path(tmp_path, shards, "sha-fp32")
    assert hr_features.features_path(tmp_path, shards, "sha-fp32") == before
    assert hr_features.features_path(tmp_path, shards, "sha-bf16") != before
    covered: list[str] = []

    def another_version(*parts: str) -> str:
        covered.extend(parts)
        return "another version of the code"

    monkeypatch.setattr(hr_features, "code_digest", another_version)
    assert hr_features.features_path(tmp_path, shards, "sha-fp32") != before
    # what computes the features: FRNet's modules (the folding too), this module, shard reading and decoding
    assert {"models/fusion.py", "models/mobilefacenet.py", "train/hr_features.py", "data/tensors.py",
            "data/shards.py", "data/images.py"} <= set(covered)
