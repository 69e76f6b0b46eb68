"""The Ray-free training step on real faces: batches are deterministic, and a short training with
the joint loss lifts the identity cosine at 14x12 above bicubic on the faces it saw, and above
the same training with the identity term's sign flipped on faces it did not see."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lrface.config import load_params
from lrface.data.datasets import open_shards
from lrface.data.tensors import iter_face_batches
from lrface.losses import JointLoss
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.train.config import TrainConfig
from lrface.train.schedule import lr_scheduler
from lrface.train.step import draw_factor, make_batch, step_rngs, train_step
from lrface.train.validation import Validator, ValSet, load_val_set


def _rows(shards, n: int) -> dict:
    t = shards.read_table(["sample_id", "hr_png", "lr_14x12_png", "lr_28x24_png", "lr_7x6_png", "split"],
                          verify=False)
    t = t.filter(t.column("split").to_numpy(zero_copy_only=False) == "train").slice(0, n)
    return {c: t.column(c).to_pylist() for c in t.column_names}


def test_batches_depend_on_seed_step_and_rank_only(tiny):
    rows = _rows(open_shards(load_params(tiny), "train"), 16)
    a = make_batch(rows, step=5, rank=0, seed=0, factors=(4, 8, 16), flip=True)
    again = make_batch(rows, step=5, rank=0, seed=0, factors=(4, 8, 16), flip=True)
    other_rank = make_batch(rows, step=5, rank=1, seed=0, factors=(4, 8, 16), flip=True)
    assert torch.equal(a.lr, again.lr) and torch.equal(a.hr, again.hr)
    assert other_rank.factor == a.factor  # every rank trains the same scale in a step
    assert not torch.equal(other_rank.hr, a.hr)  # but flips its own faces
    assert a.lr.shape[-2:] == (112 // a.factor, 96 // a.factor)
    factors = {make_batch(rows, step=s, rank=0, seed=0, factors=(4, 8, 16), flip=False).factor for s in range(30)}
    assert factors == {4, 8, 16}


def test_progress_line_shows_step_losses_rate_and_time_left():
    import io

    from lrface.train.loop import Progress

    stream = io.StringIO()
    line = Progress("srnet-alpha0.5", 200, 0, stream)
    line.t0 -= 10.0  # 50 steps in 10 s: 5 steps/s, 150 steps left
    line(50, {"train/loss": 0.25, "train/loss_image": 0.05, "train/loss_id": 0.4, "train/samples_per_s": 160.0})
    out = stream.getvalue()
    assert out.startswith("srnet-alpha0.5 [#####---------------]  25% step 50/200 | loss 0.2500 ")
    assert "(image 0.0500, identity 0.4000) | 160.0 samples/s | 0:30 left" in out


def test_factor_weights_set_the_odds_of_each_scale():
    def counts(weights):
        drawn = [draw_factor((4, 8, 16), weights, step_rngs(0, s, 0)[0]) for s in range(3000)]
        return {f: drawn.count(f) for f in (4, 8, 16)}

    weighted, equal = counts((1, 3, 4)), counts(None)
    for f, share in ((4, 1 / 8), (8, 3 / 8), (16, 4 / 8)):
        assert abs(weighted[f] / 3000 - share) < 0.03, weighted
        assert abs(equal[f] / 3000 - 1 / 3) < 0.03, equal
    assert counts((1, 3, 4)) == weighted  # seeded: the same draws again
    for bad in ([1, 2], [1, 0, 2], [1, -1, 2]):
        with pytest.raises(ValueError, match="train.factor_weights"):
            TrainConfig.from_dict({"factor_weights": bad})


def test_camera_batches_draw_a_new_corruption_per_sample_and_step(tiny):
    from lrface.data.degrade import SurveillanceConfig

    rows = _rows(open_shards(load_params(tiny), "train"), 16)
    camera = SurveillanceConfig(noise_sigma=(2.0, 6.0))

    def batch(step, rank=0, seed=0):
        return make_batch({k: rows[k] for k in ("sample_id", "hr_png")}, step, rank, seed, (4, 8, 16), True,
                          camera=camera)

    a = batch(3)
    assert torch.equal(a.lr, batch(3).lr) and torch.equal(a.hr, batch(3).hr)  # deterministic for a seed
    assert not torch.equal(a.lr, batch(3, seed=1).lr)
    assert batch(3, rank=1).factor == a.factor  # one scale per step on every rank
    assert not torch.equal(batch(3, rank=1).lr, a.lr)  # but each rank its own draws
    twice = {k: [rows[k][0]] * 2 for k in ("sample_id", "hr_png")}  # one face twice in a batch
    pair = make_batch(twice, 3, 0, 0, (4, 8, 16), False, camera=camera)
    assert torch.equal(pair.hr[0], pair.hr[1]) and not torch.equal(pair.lr[0], pair.lr[1])  # a draw per sample
    h, w = a.lr.shape[-2:]
    assert 4.0 <= a.factor <= 16.0 and (h, w) == (round(112 / a.factor), round(96 / a.factor))
    sizes = {tuple(batch(s).lr.shape[-2:]) for s in range(40)}
    assert len(sizes) > 6  # continuous scales, not three sizes
    # another step with faces of the same size: other corruptions (none is reused across epochs)
    other = next(batch(s) for s in range(4, 400) if batch(s).lr.shape == a.lr.shape)
    assert not torch.equal(other.lr, a.lr)
    # the chain starts from the flipped HR face: with every effect off it is bicubic of that face
    off = SurveillanceConfig(color_prob=0.0, blur_prob=0.0, motion_prob=0.0, jpeg_prob=0.0, noise_sigma=(0.0, 0.0))
    b = make_batch({k: rows[k] for k in ("sample_id", "hr_png")}, 3, 0, 0, (4, 8, 16), True, camera=off)
    from lrface.data.degrade import downsample

    faces = (b.hr.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    want = torch.from_numpy(np.stack([downsample(f, tuple(b.lr.shape[-2:])) for f in faces]))
    assert torch.equal((b.lr * 255).round().to(torch.uint8), want.permute(0, 3, 1, 2))


def test_mixed_batches_are_clean_or_camera_per_step(tiny):
    from lrface.data.degrade import SurveillanceConfig
    from lrface.train.config import camera_share

    rows = _rows(open_shards(load_params(tiny), "train"), 8)
    camera = SurveillanceConfig(noise_sigma=(2.0, 6.0))

    def batch(step, share, rank=0):
        return make_batch(rows, step, rank, 0, (4, 8, 16), True, camera=camera, camera_share=share)

    kinds = []
    for step in range(60):
        mixed, clean = batch(step, 0.5), make_batch(rows, step, 0, 0, (4, 8, 16), True)
        if torch.equal(mixed.lr, clean.lr):  # a clean step: exactly the bicubic path's batch
            kinds.append("clean")
        else:  # a camera step: exactly the surveillance path's batch
            assert torch.equal(mixed.lr, batch(step, 1.0).lr)
            kinds.append("camera")
        assert batch(step, 0.5, rank=1).factor == mixed.factor  # the same kind and size on every rank
    assert 15 <= kinds.count("camera") <= 45, kinds
    assert all(torch.equal(batch(s, 0.0).lr, make_batch(rows, s, 0, 0, (4, 8, 16), True).lr) for s in range(5))
    cfgs = {d: TrainConfig.from_dict({"degradation": d, "camera_share": 0.25})
            for d in ("bicubic", "surveillance", "mixed")}
    assert [camera_share(c) for c in cfgs.values()] == [0.0, 1.0, 0.25]
    for bad in (1.5, -0.1, "half", True):
        with pytest.raises(ValueError, match="train.camera_share"):
            TrainConfig.from_dict({"camera_share": bad})


def _train(tiny, frnet, sign: float, steps: int = 120) -> tuple[dict[str, float], dict[str, float]]:
    """Train a small SRNet on 14x12 faces; the validator's scores on held-out faces and on the
    first 64 training faces."""
    torch.manual_seed(0)
    shards = open_shards(load_params(tiny), "train")
    model = SRNet(SRNetConfig(n_feats=16, n_blocks=4))
    loss_fn = JointLoss(frnet, 1.0)
    loss_fn.alpha = sign  # -1: the identity term's sign flipped (pushes identities apart); the
    # constructor refuses a negative alpha, so it is set here, and both runs go through train_step
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    faces = [b for b in iter_face_batches(shards, ["hr_png", "lr_14x12_png"], 16, split="train", verify=False)]
    from lrface.train.step import Batch

    for step in range(steps):
        b = faces[step % len(faces)]
        assert train_step(model, loss_fn, opt, None, Batch(b["lr_14x12_png"], b["hr_png"], 8)) is not None
    cpu = torch.device("cpu")
    held_out = Validator(load_val_set(shards, (8,), 64), frnet, "bicubic", cpu)(model)
    seen = ValSet(torch.cat([f["hr_png"] for f in faces])[:64],
                  {"14x12": torch.cat([f["lr_14x12_png"] for f in faces])[:64]})
    return held_out, Validator(seen, frnet, "bicubic", cpu)(model)


@pytest.mark.slow
def test_short_training_lifts_identity_and_a_sign_error_does_not(tiny, frnet):
    """120 steps from scratch: on the faces it trained on, identity cosine above bicubic's; on
    held-out faces, above the sign-flipped training's (a train_step that dropped the identity
    term would make the two runs identical), which falls below bicubic on both.

    Seeds 0, 1, 2 (torch.manual_seed): seen faces +0.33 / +0.25 / +0.08 over bicubic, held out
    +0.21 / +0.20 / +0.07 over the sign-flipped run, which is below bicubic by 0.20 / 0.22 / 0.22
    (held out) and 0.36 / 0.35 / 0.35 (seen). Against bicubic on held-out faces 120 steps give
    +0.02 / -0.02 / -0.15, so that is not asserted: it failed CI after a change that kept FRNet
    the same function (folded BN) but moved its fp32 gradients by 6e-4."""
    good, good_seen = _train(tiny, frnet, +1.0)
    bad, bad_seen = _train(tiny, frnet, -1.0)
    key, bicubic = "val/idcos_14x12", "val_bicubic/idcos_14x12"
    print("identity cosine at 14x12, held out / seen: trained", good[key], good_seen[key],
          "sign-flipped", bad[key], bad_seen[key], "bicubic", good[bicubic], good_seen[bicubic])
    assert good_seen[key] > good_seen[bicubic] + 0.05, good_seen
    assert good[key] > bad[key] + 0.05, (good, bad)
    assert bad[key] < bad[bicubic] and bad_seen[key] < bad_seen[bicubic], (bad, bad_seen)


def test_a_non_finite_loss_leaves_the_weights_alone(tiny, frnet):
    rows = _rows(open_shards(load_params(tiny), "train"), 8)
    batch = make_batch(rows, step=0, rank=0, seed=0, factors=(8,), flip=False)
    model = SRNet(SRNetConfig(n_feats=8, n_blocks=1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    assert train_step(model, JointLoss(None, 0.0), opt, None, batch, finite=lambda v: False) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert train_step(model, JointLoss(None, 0.0), opt, None, batch) is not None
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def _lrs(cfg: TrainConfig) -> list[float]:
    opt = torch.optim.Adam(SRNet(SRNetConfig(n_feats=4, n_blocks=1)).parameters(), lr=cfg.lr)
    sched = lr_scheduler(opt, cfg)
    out = []
    for _ in range(cfg.steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_lr_schedules_step_and_cosine():
    step = _lrs(TrainConfig(steps=30, lr=1e-3, lr_step=10, lr_gamma=0.5))
    assert step[0] == step[9] == 1e-3 and step[10] == pytest.approx(5e-4) and step[29] == pytest.approx(2.5e-4)
    cos = _lrs(TrainConfig(steps=30, lr=1e-3, lr_schedule="cosine"))
    assert cos[0] == pytest.approx(1e-3) and cos[15] == pytest.approx(5e-4)
    assert all(a > b for a, b in itertools.pairwise(cos)) and cos[-1] < 1e-5
    with pytest.raises(ValueError, match="train.lr_schedule"):
        TrainConfig.from_dict({"lr_schedule": "linear"})


def test_the_lr_schedule_is_part_of_the_job_identity_only_when_not_step(tiny):
    """A cosine schedule is another training, and its step count shapes every step's lr; a step
    schedule resumes with more steps."""
    from lrface.train.config import train_config
    from lrface.train.identity import job_name

    def name(extra):
        p = load_params(tiny, {"train.sweep": {}, **extra})
        return job_name(p, train_config(p, alpha=0.5), "manifest")

    step, cosine = name({"train.lr_schedule": "step"}), name({"train.lr_schedule": "cosine"})
    assert cosine == name({}) and cosine != step  # params.yaml's default is cosine
    assert name({"train.lr_schedule": "cosine", "train.steps": 1234}) != cosine
    assert name({"train.lr_schedule": "step", "train.steps": 1234}) == step


def test_the_training_code_is_part_of_the_job_identity(tiny, tmp_path, monkeypatch):
    """A job of other code (say, another input order) must not resume this one's checkpoints: the
    digest of the training's modules is in the name, and it covers the input pipeline; a CLI
    edit (nothing a training computes) keeps the name, so an interrupted job still resumes."""
    import shutil

    import lrface.code_digest as code
    from lrface.train.config import train_config
    from lrface.train.identity import job_name

    pkg = tmp_path / "lrface"
    shutil.copytree(code.LRFACE_ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "LRFACE_ROOT", pkg)
    p = load_params(tiny, {"train.sweep": {}})
    cfg = train_config(p, alpha=0.5)
    before = job_name(p, cfg, "manifest")
    assert job_name(p, cfg, "manifest") == before  # same code, same job: an interrupted run resumes
    (pkg / "cli.py").write_text((pkg / "cli.py").read_text() + "\n# a clearer help text\n")
    assert job_name(p, cfg, "manifest") == before
    for edited in ("data/shards.py", "train/step.py", "models/srnet.py", "config.py"):  # input, step, model, plumbing
        (pkg / edited).write_text((pkg / edited).read_text() + "\n# edited\n")
        after = job_name(p, cfg, "manifest")
        assert after != before, edited
        before = after
    (pkg / "data" / "align.py").write_text((pkg / "data" / "align.py").read_text() + "\n# edited\n")
    assert job_name(p, cfg, "manifest") == before  # the detector's alignment is no training code
