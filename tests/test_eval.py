"""LFW protocol on a small real subset, evaluation runs in MLflow, compare and promotion."""

import json

import numpy as np
import pytest
import torch
import yaml

from lrface.config import load_params
from tests.conftest import LFW_DIR, REPO, tiny_pairs_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_lfw(tmp_path_factory):
    """2 folds x (12 same + 12 different) real LFW pairs, aligned with the reference landmarks."""
    from lrface.data.align_stage import run_align
    from lrface.data.shard_stage import run_shards

    root = tmp_path_factory.mktemp("eval")
    tiny_pairs_file(root / "pairs.txt")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"] = {"data_root": str(LFW_DIR.parent), "work_dir": str(root / "work"),
                       "frnet_checkpoint": str(LFW_DIR.parents[1] / "weights" / "mobilefacenet_casia_112x96.ckpt")}
    params["data"]["datasets"] = {"lfw": {
        "role": "test", "sources": [{"name": "lfw", "root": "lfw/lfw-deepfunneled"}],
        "pairs": str(root / "pairs.txt"), "landmarks_file": "lfw/reference_landmarks.txt"}}
    params["evaluate"].update(methods=[], sizes=["7x6", "28x24"], grid_pairs=2, batch_size=32,
                              timing_batches=[1, 8])
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    p = load_params(path)
    run_align(p, "lfw", progress=False)
    run_shards(p, "lfw")
    return path


def _register(client, alpha, path):
    from lrface.models import SRNetConfig
    from lrface.train.config import TrainConfig
    from lrface.train.mlflow_run import log_and_register

    run = client.create_run(client.get_experiment_by_name("lrface").experiment_id)
    return log_and_register(path, run.info.run_id, TrainConfig(alpha=alpha), SRNetConfig())


def test_lfw_protocol_reports_and_registry(small_lfw, tmp_path, capsys):
    from mlflow import MlflowClient

    from lrface.checkpoints import save_srnet
    from lrface.eval.registry import comparison, comparison_markdown, promote
    from lrface.eval.run import evaluate_lfw
    from lrface.models import SRNet, SRNetConfig
    from lrface.tracking import setup_mlflow

    p = load_params(small_lfw)
    setup_mlflow(p)
    client = MlflowClient()
    torch.manual_seed(0)
    paths = [save_srnet(SRNet(SRNetConfig(n_blocks=1)), tmp_path / f"m{i}.pt") for i in range(2)]
    versions = [_register(client, a, path) for a, path in zip((0.0, 0.5), paths, strict=True)]
    out = evaluate_lfw(p, [f"models:/lrface-srnet/{v}" for v in versions], progress=False)

    cells = {(r.method, r.size): r for r in out.results if r.protocol == "lfw"}
    surv = {(r.method, r.size): r for r in out.results if r.protocol == "lfw_surv"}
    names = [f"lrface-srnet v{v} (alpha={a})" for v, a in zip(versions, ("0", "0.5"), strict=True)]
    sizes = ("7x6", "28x24", "7x6-7x6", "28x24-28x24")  # probe vs 112x96, and both faces low-resolution
    assert set(cells) == {("hr", "112x96")} | {(m, s) for m in ["bicubic", *names] for s in sizes}
    assert set(surv) == {(m, s) for m in ["bicubic", *names] for s in sizes}  # the surveillance protocol
    hr = cells["hr", "112x96"]
    assert hr.acc >= 0.85 and len(hr.fold_accuracies) == 2  # real faces, real checkpoint
    # more pixels, better recognition: on real faces bicubic at 28x24 beats 7x6, and hr beats both
    assert cells["bicubic", "28x24"].acc > cells["bicubic", "7x6"].acc
    assert cells["bicubic", "28x24"].auc > cells["bicubic", "7x6"].auc
    assert hr.auc >= cells["bicubic", "28x24"].auc
    assert cells["bicubic", "7x6"].acc < 0.9  # 7x6 faces are hard: a broken degradation would not be
    for name in ("lfw_table.md", "lfw_table.csv", "lfw_results.json", "roc_7x6.png", "roc_28x24.png",
                 "lfw_surv_table.md", "lfw_surv_results.json", "roc_surv_7x6.png", "roc_surv_28x24-28x24.png",
                 "sr_grid.png", "sr_grid_surveillance.png", "complexity.json"):
        assert (out.out_dir / name).is_file(), name
    assert "| hr |" in (out.out_dir / "lfw_table.md").read_text()
    assert "Both faces" in (out.out_dir / "lfw_table.md").read_text()
    metrics = json.loads(out.files["metrics"].read_text())
    assert "acc_14x12" in metrics["promotion"]["skipped"]  # evaluate.promote_by: 14x12 not evaluated here
    # `lrface verify --srnet <file>` finds the thresholds evaluation measured for those weights,
    # though evaluation named the model by its registry URI (inference used to look up the path).
    from lrface.inference import load_verifier

    # verify --protocol surveillance takes that protocol's thresholds (a marker value shows the source)
    client.log_metric(out.run_ids[names[0]], "lfw_surv/thr_far1e-3_28x24", 0.4242)
    clean_thr = load_verifier(p, str(paths[0])).thresholds
    surv_thr = load_verifier(p, str(paths[0]), protocol="surveillance").thresholds
    assert {"7x6", "28x24", "7x6-7x6", "112x96"} <= set(clean_thr) and set(surv_thr) == set(clean_thr)
    assert surv_thr["28x24"] == 0.4242 and clean_thr["28x24"] != 0.4242
    assert surv_thr["112x96"] == clean_thr["112x96"]  # 112x96 pairs: one protocol
    assert surv["bicubic", "28x24"].auc != cells["bicubic", "28x24"].auc  # other probes, other scores
    assert metrics["lfw_surv"]["bicubic"]["acc_7x6"] == pytest.approx(surv["bicubic", "7x6"].acc, abs=1e-6)
    assert "hr" not in metrics["lfw_surv"] and "lfw_surv/acc_7x6" in client.get_run(out.run_ids["bicubic"]).data.metrics
    assert metrics["lfw"]["bicubic"]["acc_7x6"] == pytest.approx(cells["bicubic", "7x6"].acc, abs=1e-6)
    # Two blurred faces look alike: their impostor scores, hence the threshold, are far higher
    # than a blurred probe against a sharp gallery face. This is why LR-vs-LR has its own thresholds.
    bic = metrics["lfw"]["bicubic"]
    assert bic["thr_far1e-2_7x6-7x6"] > bic["thr_far1e-2_7x6"] + 0.1
    complexity = json.loads((out.out_dir / "complexity.json").read_text())
    assert complexity["frnet"]["params"] == 999_552
    assert complexity["methods"]["bicubic"]["ms_per_pair@28x24_batch8"] > 0

    # one evaluation run per method, linked to the model version it evaluated
    run = client.get_run(out.run_ids[names[1]])
    assert run.data.tags["lrface.model_version"] == versions[1]
    assert run.data.tags["lrface.manifest_sha256"] == out.metrics["manifest_sha256"]
    assert "lfw/acc_7x6" in run.data.metrics and "lfw/tar_far1e-3_28x24" in run.data.metrics
    assert any(a.path == "report" for a in client.list_artifacts(run.info.run_id))

    rows = comparison()
    assert [r.label.split(" ")[0] for r in rows][:2] == ["hr", "bicubic"]
    table = comparison_markdown(rows)
    assert f"lrface-srnet v{versions[0]}" in table and "7x6" in table

    # promotion: best version by metric, only when it beats the current champion
    first = promote("acc_28x24")
    assert first["moved"] and first["best_version"] in versions
    champion = str(client.get_model_version_by_alias("lrface-srnet", "champion").version)
    worse = [v for v in versions if v != champion][0]
    run_id = out.run_ids[names[versions.index(worse)]]
    client.log_metric(run_id, "lfw/acc_28x24", 0.0)  # make the other clearly worse
    again = promote("acc_28x24")
    assert not again["moved"] and again["previous_version"] == champion
    # the surveillance protocol's table, and promotion by its metrics
    surv_rows = {r.label: r.metrics for r in comparison("lfw_surv/")}
    assert surv_rows["bicubic"]["acc_7x6"] == pytest.approx(surv["bicubic", "7x6"].acc, abs=1e-6)
    assert "acc_7x6" not in surv_rows.get("hr", {})
    by_surv = promote("lfw_surv/auc_28x24", alias="camera")
    assert by_surv["metric"] == "lfw_surv/auc_28x24" and by_surv["moved"]
    best = max(versions, key=lambda v: surv[names[versions.index(v)], "28x24"].auc)
    assert by_surv["best_version"] == best
    # the registry's refusal (MLflow reserves "v<N>" aliases) is one line naming it, not a traceback
    from lrface.cli import main

    assert main(["--params", str(small_lfw), "compare", "--promote-by", "acc_28x24", "--alias", "v1"]) == 1
    err = capsys.readouterr().err
    assert "lrface compare: error:" in err and "'v1'" in err and "Traceback" not in err


def test_wrong_size_model_and_missing_pair_image(small_lfw, tmp_path):
    from lrface.data.shards import ShardSet
    from lrface.data.sources import PairsFileError
    from lrface.eval.lfw import LfwEvaluator, load_lfw
    from lrface.models import SRNet, SRNetConfig
    from lrface.restoration import SRNetRestorer

    p = load_params(small_lfw)
    shards = ShardSet(p.path("work_dir") / "lfw" / "shards")
    data = load_lfw(shards, p.path("work_dir").parent / "pairs.txt")

    class Shrinker(SRNet):
        def forward(self, lr):
            return super().forward(lr)[..., :-1]

    from lrface.checkpoints import load_frnet

    ev = LfwEvaluator(load_frnet(p.path("frnet_checkpoint")), data, "x", progress=False)
    with pytest.raises(ValueError, match="expected"):
        ev.evaluate(SRNetRestorer(Shrinker(SRNetConfig(n_blocks=1)), name="shrinker"), "7x6")

    lines = (p.path("work_dir").parent / "pairs.txt").read_text().splitlines()
    lines[3] = "Nobody_Here\t1\t2"
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(PairsFileError, match=r"pairs.txt:4: image Nobody_Here/Nobody_Here_0001.jpg"):
        load_lfw(shards, tmp_path / "pairs.txt")
    assert np.isfinite(ev.evaluate_hr().acc)
    # The gallery side reuses the probe side's features of shared images, in pair order.
    from lrface.data.shards import lr_column
    from lrface.eval.lfw import embed_rows
    from lrface.restoration import Bicubic

    direct = embed_rows(ev.frnet, data.table, data.gallery_rows, lr_column("7x6"), Bicubic())
    assert np.allclose(ev.lr_features(Bicubic(), "7x6", "gallery", cache=False), direct, atol=1e-4)


def test_feature_cache_is_keyed_on_the_pairs_evaluated(small_lfw, tmp_path):
    """One fold cached first, then both: the second run must not reuse the first's arrays."""
    from lrface.checkpoints import load_frnet
    from lrface.data.shards import ShardSet
    from lrface.eval.lfw import LfwEvaluator, load_lfw
    from lrface.restoration import Bicubic

    p = load_params(small_lfw)
    shards = ShardSet(p.path("work_dir") / "lfw" / "shards")
    pairs = p.path("work_dir").parent / "pairs.txt"
    frnet = load_frnet(p.path("frnet_checkpoint"))
    one, both = load_lfw(shards, pairs, folds=[0]), load_lfw(shards, pairs)
    assert len(one.pairs) < len(both.pairs)
    cached = lambda data: LfwEvaluator(frnet, data, "x", cache_dir=tmp_path, progress=False)  # noqa: E731
    first = cached(one)
    first_hr, first_lr = first.hr_features(), first.lr_features(Bicubic(), "7x6")
    assert len(list(tmp_path.glob("*.npy"))) == 2
    second = cached(both)
    fresh = LfwEvaluator(frnet, both, "x", progress=False)
    assert np.allclose(second.lr_features(Bicubic(), "7x6"), fresh.lr_features(Bicubic(), "7x6", cache=False))
    assert np.allclose(second.hr_features(), fresh.hr_features())
    assert len(list(tmp_path.glob("*.npy"))) == 4  # its own arrays; the first fold's stay as they were
    assert np.allclose(cached(one).lr_features(Bicubic(), "7x6"), first_lr)
    assert np.allclose(cached(one).hr_features(), first_hr)


def test_comparison_never_ranks_old_mean_subtracted_accuracy_as_plain_cosine():
    """Evaluations before 0.2 logged the authors' mean-subtracted accuracy as acc_<size>."""
    from lrface.eval.registry import _pick

    old = {"lfw/acc_14x12": 0.9153, "lfw/acc_std_14x12": 0.0137, "lfw/auc_14x12": 0.97}
    assert _pick(old, "lfw/") == {"acc_meansub_14x12": 0.9153, "auc_14x12": 0.97}
    new = {"lfw/acc_14x12": 0.9167, "lfw/acc_meansub_14x12": 0.914, "lfw/acc_std_14x12": 0.01}
    assert _pick(new, "lfw/") == {"acc_14x12": 0.9167, "acc_meansub_14x12": 0.914, "acc_std_14x12": 0.01}


def test_surveillance_probes_are_fixed_per_image_and_not_the_clean_ones(small_lfw):
    from dataclasses import replace

    from lrface.data.degrade import DegradeConfig
    from lrface.data.shards import ShardSet
    from lrface.eval.lfw import load_lfw
    from lrface.eval.probes import CameraProbes, ShardProbes

    p = load_params(small_lfw)
    data = load_lfw(ShardSet(p.path("work_dir") / "lfw" / "shards"), p.path("work_dir").parent / "pairs.txt")
    camera = DegradeConfig.from_dict(p.get("degrade")).surveillance
    rows = np.unique(data.probe_rows)[:12]
    probes = CameraProbes(camera)
    a = probes.faces(data.table, rows, "14x12")
    assert a.shape == (12, 3, 14, 12)
    assert torch.equal(a, CameraProbes(camera).faces(data.table, rows[::-1], "14x12").flip(0))  # per image
    clean = ShardProbes().faces(data.table, rows, "14x12")
    assert (a - clean).abs().mean() > 0.01  # camera-like, not the clean faces
    other = CameraProbes(replace(camera, seed=camera.seed + 1))
    assert not torch.equal(a, other.faces(data.table, rows, "14x12")) and other.fingerprint != probes.fingerprint


def test_sr_grid_shows_the_evaluated_sizes_or_is_left_out(small_lfw, tmp_path):
    from PIL import Image

    from lrface.eval.run import evaluate_lfw

    common = {"evaluate.sizes": ["16x16"], "evaluate.both_lr": False, "evaluate.protocols": ["clean"],
              "evaluate.promote_by": None, "evaluate.timing_batches": [1]}
    p = load_params(small_lfw, {**common, "evaluate.grid_pairs": 1, "evaluate.out_dir": str(tmp_path / "a")})
    out = evaluate_lfw(p, [], progress=False)  # none of 7x6 / 14x12 / 28x24: the grid shows 16x16
    with Image.open(out.out_dir / "sr_grid.png") as grid:  # a 14-px header and one 112-px face row
        assert grid.height == 14 + 112
    p = load_params(small_lfw, {**common, "evaluate.grid_pairs": 0, "evaluate.out_dir": str(tmp_path / "b")})
    out = evaluate_lfw(p, [], progress=False)
    assert not (out.out_dir / "sr_grid.png").exists() and "grid_clean" not in out.files
    assert (out.out_dir / "lfw_table.md").is_file()


def test_feature_cache_key_covers_the_srnet_settings_no_weight_holds():
    from lrface.models import SRNet, SRNetConfig
    from lrface.restoration import SRNetRestorer

    a = SRNet(SRNetConfig(n_blocks=1))
    b = SRNet(SRNetConfig(n_blocks=1, res_scale=0.5))
    b.load_state_dict(a.state_dict())
    assert SRNetRestorer(a).fingerprint != SRNetRestorer(b).fingerprint
    same = SRNet(SRNetConfig(n_blocks=1))
    same.load_state_dict(a.state_dict())
    assert SRNetRestorer(a).fingerprint == SRNetRestorer(same).fingerprint
