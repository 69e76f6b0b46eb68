import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lrface.models import SRNet, SRNetConfig, model_size

LR_SIZES = [(7, 6), (14, 12), (16, 16), (28, 24), (5, 9)]


@pytest.mark.parametrize("variant", ["wdsr_a", "wdsr_b"])
@pytest.mark.parametrize("hw", LR_SIZES)
def test_output_is_4x_for_every_size(variant, hw):
    net = SRNet(SRNetConfig(variant=variant, n_blocks=2)).eval()
    for n in (1, 3):
        with torch.no_grad():
            y = net(torch.rand(n, 3, *hw))
        assert y.shape == (n, 3, hw[0] * 4, hw[1] * 4)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("variant", ["wdsr_a", "wdsr_b"])
def test_every_conv_is_weight_normalised_and_no_batch_norm(variant):
    net = SRNet(SRNetConfig(variant=variant))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) >= 2 * net.config.n_blocks + 3
    for m in convs:
        assert parametrize.is_parametrized(m, "weight"), m
        names = set(dict(m.parametrizations.weight.named_parameters()))
        assert names == {"original0", "original1"}  # g and v
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
    assert not any(isinstance(m, norms) for m in net.modules())


def test_two_branches_both_contribute():
    net = SRNet(SRNetConfig(n_blocks=1)).eval()
    x = torch.rand(2, 3, 14, 12)
    full = net(x)
    with torch.no_grad():
        for p in net.skip.parameters():
            p.zero_()
    body_only = net(x)
    assert not torch.allclose(full, body_only)
    assert sum(isinstance(m, nn.PixelShuffle) for m in net.modules()) == 2


def test_wide_activation_channels():
    cfg = SRNetConfig(variant="wdsr_a", n_feats=16, expansion=6, n_blocks=1)
    block = SRNet(cfg).body[0]
    assert block.body[0].out_channels == 96 and block.body[2].out_channels == 16
    cfg_b = SRNetConfig(variant="wdsr_b", n_feats=20, expansion=6, n_blocks=1, low_rank_ratio=0.8)
    b = SRNet(cfg_b).body[0].body
    assert (b[0].kernel_size, b[0].out_channels) == ((1, 1), 120)
    assert (b[2].kernel_size, b[2].out_channels) == ((1, 1), 16)
    assert (b[3].kernel_size, b[3].out_channels) == ((3, 3), 20)


def test_default_config_is_small():
    size = model_size(SRNet(SRNetConfig()))
    assert 100_000 < size.params <= 2_000_000
    assert size.megabytes < 10


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ValueError, match="n_blok"):
        SRNetConfig.from_dict({"n_blok": 3})
    with pytest.raises(ValueError, match="variant"):
        SRNetConfig.from_dict({"variant": "edsr"})
    assert SRNetConfig.from_dict({"rgb_mean": [0.4, 0.4, 0.4]}).rgb_mean == (0.4, 0.4, 0.4)


def test_rejects_wrong_channels():
    with pytest.raises(ValueError, match="RGB"):
        SRNet()(torch.rand(1, 1, 8, 8))
