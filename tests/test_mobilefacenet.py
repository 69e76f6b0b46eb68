import numpy as np
import pytest
import torch
from PIL import Image

from lrface.checkpoints import (
    CheckpointError,
    load_frnet,
    load_mobilefacenet,
    load_srnet,
    save_srnet,
)
from lrface.models import MobileFaceNet, SRNet, SRNetConfig, model_size


def test_architecture_matches_the_published_size():
    net = MobileFaceNet()
    assert model_size(net).params == 999_552
    assert net(torch.zeros(2, 3, 112, 96)).shape == (2, 128)
    with pytest.raises(ValueError, match="112, 96"):
        net(torch.zeros(1, 3, 112, 112))


def test_real_checkpoint_loads_strictly(frnet_ckpt):
    net = load_mobilefacenet(frnet_ckpt)
    assert not net.training
    assert len(net.state_dict()) == 333


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_frnet(missing)


def test_other_architecture_fails_with_keys(tmp_path):
    path = tmp_path / "srnet_as_frnet.ckpt"
    torch.save({"net_state_dict": SRNet(SRNetConfig(n_blocks=1)).state_dict()}, path)
    with pytest.raises(CheckpointError) as e:
        load_mobilefacenet(path)
    msg = str(e.value)
    assert "srnet_as_frnet.ckpt" in msg and "missing keys (333)" in msg and "blocks.0.conv.0.weight" in msg
    assert "unexpected keys" in msg and "head.parametrizations" in msg


def test_shape_mismatch_and_garbage_files(tmp_path, frnet_ckpt):
    sd = torch.load(frnet_ckpt, map_location="cpu", weights_only=True)["net_state_dict"]
    sd["linear1.conv.weight"] = torch.zeros(64, 512, 1, 1)
    bad = tmp_path / "shape.ckpt"
    torch.save({"net_state_dict": sd}, bad)
    with pytest.raises(CheckpointError, match="linear1.conv.weight"):
        load_mobilefacenet(bad)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_mobilefacenet(junk)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(frnet_ckpt.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="truncated.ckpt"):
        load_mobilefacenet(truncated)


def test_srnet_checkpoint_roundtrip(tmp_path):
    net = SRNet(SRNetConfig(variant="wdsr_b", n_blocks=2, n_feats=8)).eval()
    path = save_srnet(net, tmp_path / "m" / "srnet.pt")
    back = load_srnet(path)
    assert back.config == net.config
    x = torch.rand(2, 3, 7, 6)
    assert torch.equal(net(x), back(x))
    with pytest.raises(CheckpointError, match="not an lrface SRNet"):
        torch.save({"state_dict": {}}, tmp_path / "other.pt")
        load_srnet(tmp_path / "other.pt")


def _astronaut_face() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    img = Image.fromarray(skimage_data.astronaut())  # 512x512 RGB, one face
    face = img.crop((150, 20, 330, 230)).resize((96, 112), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(face)).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_real_checkpoint_embeds_astronaut_deterministically(frnet):
    face = _astronaut_face()
    e1 = frnet(face)
    e2 = frnet(torch.cat([face, face]))  # batch size must not change eval-mode features
    assert e1.shape == (1, 128) and torch.isfinite(e1).all()
    assert torch.allclose(e1, e2[:1], atol=1e-5) and torch.allclose(e2[0], e2[1], atol=1e-5)
    assert e1.norm() > 1.0
    # A real face and its mirror image are the same identity to a trained FRNet.
    flip = frnet(torch.flip(face, dims=[3]))
    noise = frnet(torch.rand_like(face))
    cos = torch.nn.functional.cosine_similarity
    assert cos(e1, flip).item() > 0.8
    assert cos(e1, flip).item() > cos(e1, noise).item() + 0.3
    feat = frnet.embed_flip(face)
    assert feat.shape == (1, 256)
