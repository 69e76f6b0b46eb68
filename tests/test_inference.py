"""Inference on real LFW faces placed in synthetic low-resolution frames: routing, bad input,
1:1 and 1:N from the CLI, the gallery cache, ONNX agreement and the served model over HTTP."""

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lrface.data.align import read_landmarks_file
from lrface.data.degrade import small_face_frame
from lrface.data.images import load_rgb
from tests.conftest import FRNET_CKPT, LFW_DIR, REPO
from tests.servers import child_env, free_port, stop, wait_http

pytestmark = pytest.mark.slow
SAME = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg")
OTHER = "AJ_Cook/AJ_Cook_0001.jpg"


@pytest.fixture(scope="module")
def landmarks():
    return read_landmarks_file(LFW_DIR / "reference_landmarks.txt")


def frame(rel, landmarks, width, path, seed=0, hw=(200, 240)):
    img = load_rgb(LFW_DIR / "lfw-deepfunneled" / rel)
    f, _ = small_face_frame(img, landmarks[rel], width, hw, seed)
    Image.fromarray(f).save(path)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["paths"].update(work_dir=str(root / "work"), frnet_checkpoint=str(FRNET_CKPT))
    p["inference"].update(srnet=None)
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    return root


@pytest.fixture(scope="module")
def verifier(work):
    from lrface.config import load_params
    from lrface.inference import load_verifier

    return load_verifier(load_params(work / "params.yaml"), None, threshold=0.3)


def cli(work, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lrface.cli", "--params", str(work / "params.yaml"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=child_env())


def test_small_faces_are_found_and_routed_by_size(verifier, landmarks, tmp_path):
    from lrface.inference import sr_factor

    assert [sr_factor(w) for w in (5, 8, 9, 12, 16, 24, 39)] == [16, 16, 8, 8, 8, 4, 4]
    paths = [frame(SAME[0], landmarks, w, tmp_path / f"w{w}.png", seed=w) for w in (12, 24, 80)]
    embs = verifier.embed(paths)
    got = [(e.route, e.size) for e in embs]
    assert got == [("bicubic", "14x12"), ("bicubic", "28x24"), ("direct", "112x96")]
    for e, w in zip(embs, (12, 24, 80), strict=True):
        assert abs(e.faces[e.used].width_px - w) / w < 0.35, (e.faces, w)
        assert np.isfinite(e.embedding).all()


def test_large_faces_verify_same_and_different(verifier, landmarks, tmp_path):
    a, b = (frame(r, landmarks, 60, tmp_path / f"{i}.png", seed=i, hw=(160, 160)) for i, r in enumerate(SAME))
    c = frame(OTHER, landmarks, 60, tmp_path / "c.png", seed=5, hw=(160, 160))
    same, diff = verifier.verify(a, b), verifier.verify(a, c)
    assert same.similarity > diff.similarity + 0.2 and same.same and not diff.same


def test_several_faces_all_reported_largest_used(verifier, landmarks, tmp_path):
    big = load_rgb(LFW_DIR / "lfw-deepfunneled" / SAME[0])
    f1, _ = small_face_frame(big, landmarks[SAME[0]], 50, (140, 300), seed=1)
    small = load_rgb(LFW_DIR / "lfw-deepfunneled" / OTHER)
    f2, _ = small_face_frame(small, landmarks[OTHER], 30, (140, 300), seed=2)
    both = f1.copy()
    both[:, 180:] = f2[:, 180:]  # seed 2 may place it left: paste the right half, then check
    Image.fromarray(both).save(tmp_path / "two.png")
    e = verifier.embed([tmp_path / "two.png"])[0]
    assert len(e.faces) == 2, "seed 2 placed the second face in the left half of its frame: pick another seed"
    assert e.used == 0 and e.faces[0].width_px > e.faces[1].width_px
    e1 = verifier.embed([tmp_path / "two.png"], [1])[0]
    assert e1.used == 1 and not np.allclose(e1.embedding, e.embedding)


def test_bad_inputs_are_named_errors(work, landmarks, tmp_path):
    from lrface.inference import DetectedFace, FaceTooSmallError

    (tmp_path / "trunc.jpg").write_bytes((LFW_DIR / "lfw-deepfunneled" / OTHER).read_bytes()[:300])
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)).save(tmp_path / "noise.png")
    ok = frame(OTHER, landmarks, 60, tmp_path / "ok.png", hw=(160, 160))
    for bad, words in ((tmp_path / "trunc.jpg", "trunc.jpg"), (tmp_path / "missing.png", "no such file"),
                       (tmp_path / "noise.png", "no face found")):
        r = cli(work, "verify", str(ok), str(bad), "--bicubic", "--threshold", "0.3")
        assert r.returncode == 1 and words in r.stderr, r.stderr
    r = cli(work, "-S", "inference.max_pixels=10000", "verify", str(ok), str(ok), "--bicubic", "--threshold", "0.3")
    assert r.returncode == 1 and "too large" in r.stderr, r.stderr
    from lrface.config import load_params
    from lrface.inference import load_verifier

    v = load_verifier(load_params(work / "params.yaml"), None, threshold=0.3)
    tiny = DetectedFace((0, 0, 4, 4), 0.99, [[1, 1], [3, 1], [2, 2], [1, 3], [3, 3]], 4.0, 8)
    with pytest.raises(FaceTooSmallError, match="below the 6 px"):
        v._crop(np.zeros((20, 20, 3), np.uint8), tiny, "x.png")


def test_verify_cli_json_and_table(work, landmarks, tmp_path):
    a, b = (frame(r, landmarks, 12, tmp_path / f"{i}.png", seed=i) for i, r in enumerate(SAME))
    r = cli(work, "verify", str(a), str(b), "--bicubic", "--threshold", "0.3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["threshold"] == 0.3 and out["threshold_size"] == "14x12-14x12"  # both faces small
    assert out["same"] == (out["similarity"] >= 0.3)  # the decision is the threshold's
    from lrface.config import load_params
    from lrface.inference import load_verifier

    direct = load_verifier(load_params(work / "params.yaml"), None, threshold=0.3).verify(str(a), str(b))
    assert out["similarity"] == pytest.approx(direct.similarity, abs=1e-5)  # the CLI is the library
    assert out["a"]["faces"][0]["box"] and out["a"]["size"] == "14x12"
    r = cli(work, "verify", str(a), str(b), "--bicubic", "--threshold", "0.3")
    assert r.returncode == 0 and "similarity" in r.stdout and "face 0" in r.stdout


def test_identify_uses_and_refreshes_the_gallery_cache(work, landmarks, tmp_path):
    gallery = tmp_path / "gallery"
    names = sorted({k.split("/")[0] for k in landmarks if k.endswith("_0002.jpg")})[:6]
    for i, n in enumerate(names):
        (gallery / n).mkdir(parents=True)
        frame(f"{n}/{n}_0001.jpg", landmarks, 60, gallery / n / "a.png", seed=i, hw=(160, 160))
    (gallery / "broken.jpg").write_bytes(b"not an image")
    probe = frame(f"{names[2]}/{names[2]}_0002.jpg", landmarks, 60, tmp_path / "probe.png", seed=9, hw=(160, 160))
    args = ["identify", str(probe), "--gallery", str(gallery), "--bicubic", "--threshold", "0.3", "--json",
            "--cache", str(tmp_path / "g.parquet"), "--no-progress"]
    first = json.loads(cli(work, *args).stdout)
    assert first["gallery"]["enrolled"] == 6 and first["gallery"]["embedded"] == 7
    assert any("broken.jpg" in k for k in first["gallery"]["failed"])
    assert first["matches"][0]["identity"] == names[2]
    top = first["matches"][0]
    assert top["threshold"] == 0.3 and top["accepted"] == (top["similarity"] >= 0.3)
    second = json.loads(cli(work, *args).stdout)
    assert second["gallery"]["reused_from_cache"] == 7 and second["gallery"]["embedded"] == 0
    assert second["matches"] == first["matches"]
    os.utime(gallery / names[0] / "a.png", ns=(1, 1))
    third = json.loads(cli(work, *args).stdout)
    assert third["gallery"]["embedded"] == 1


def test_onnx_export_agrees_with_torch(tmp_path):
    from lrface.checkpoints import load_frnet
    from lrface.export import export_frnet, export_srnet, max_difference
    from lrface.models.srnet import SRNet, SRNetConfig

    torch.manual_seed(0)
    sr = SRNet(SRNetConfig())
    p = export_srnet(sr, tmp_path / "srnet.onnx")
    assert max_difference(sr, p, [torch.rand(1, 3, 7, 6), torch.rand(3, 3, 14, 12), torch.rand(2, 3, 16, 16),
                                  torch.rand(5, 3, 28, 24)]) < 1e-4
    fr = load_frnet(FRNET_CKPT)
    p = export_frnet(fr, tmp_path / "frnet.onnx")
    assert max_difference(fr, p, [torch.rand(1, 3, 112, 96), torch.rand(4, 3, 112, 96)]) < 1e-4


def _post(url, body: bytes, ctype="application/json"):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_served_model_answers_and_rejects_bad_requests(work, landmarks, tmp_path):
    a, b = (frame(r, landmarks, 60, tmp_path / f"{i}.png", seed=i, hw=(160, 160)) for i, r in enumerate(SAME))
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below, after the server
    proc = subprocess.Popen([sys.executable, "-m", "lrface.cli", "--params", str(work / "params.yaml"), "serve",
                             "--bicubic", "--threshold", "0.3", "--port", str(port)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=240)
        url = f"http://127.0.0.1:{port}/invocations"
        enc = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
        good = json.dumps({"dataframe_records": [{"image_a": enc(a), "image_b": enc(b)}]}).encode()
        status, body = _post(url, good)
        assert status == 200, body
        pred = body["predictions"][0]
        assert pred["same"] and pred["similarity"] > 0.3 and pred["a"]["faces"]
        not_image = json.dumps({"dataframe_records": [{"image_a": base64.b64encode(b"hello").decode(),
                                                       "image_b": enc(b)}]}).encode()
        bad_faces = [json.dumps({"dataframe_records": [{"image_a": enc(a), "image_b": enc(b), "face_a": f}]}).encode()
                     for f in (7, "first", 0.5)]  # no such face; not an index (these were 500s)
        for bad in (not_image, b"", b"this is not json", b'{"dataframe_records": [{"image_a": "%%%"}]}', *bad_faces):
            status, body = _post(url, bad)
            assert 400 <= status < 500, (bad[:40], status, body)
        _, body = _post(url, not_image)
        assert "image_a" in json.dumps(body), body  # the error names the request field that is bad
        status, _ = _post(url, good)  # still serving
        assert status == 200
    finally:
        stop(proc)
        log.close()


def test_verify_and_identify_take_the_chosen_protocols_thresholds_and_say_so(work, landmarks, tmp_path):
    """Without --threshold, the evaluation's thresholds decide: --protocol surveillance takes the
    surveillance protocol's (here from metrics.json, the work dir has no MLflow evaluation), and the
    output names the calibration."""
    from lrface.config import load_params

    thr = {"lfw": {"hr": {"thr_far1e-3_112x96": 0.31},
                   "bicubic": {"thr_far1e-3_14x12-14x12": 0.61, "thr_far1e-3_14x12": 0.41}},
           "lfw_surv": {"bicubic": {"thr_far1e-3_14x12-14x12": 0.71, "thr_far1e-3_14x12": 0.51}}}
    work_dir = load_params(work / "params.yaml").path("work_dir")
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "metrics.json").write_text(json.dumps(thr))
    a, b = (frame(r, landmarks, 12, tmp_path / f"{i}.png", seed=i) for i, r in enumerate(SAME))
    for flag, want, protocol in (([], 0.61, "clean"), (["--protocol", "surveillance"], 0.71, "surveillance")):
        r = cli(work, "verify", str(a), str(b), "--bicubic", "--json", *flag)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert (out["threshold"], out["threshold_protocol"], out["threshold_size"]) == (want, protocol, "14x12-14x12")
        text = cli(work, "verify", str(a), str(b), "--bicubic", *flag).stdout
        assert f"{protocol} calibration" in text and f"threshold {want:.4f}" in text
    gallery = tmp_path / "gallery" / "x"
    gallery.mkdir(parents=True)
    frame(SAME[0], landmarks, 60, gallery / "a.png", hw=(160, 160))
    r = cli(work, "identify", str(b), "--gallery", str(gallery.parent), "--bicubic", "--protocol", "surveillance",
            "--no-progress", "--cache", str(tmp_path / "g.parquet"))
    assert r.returncode == 0 and "decisions: surveillance calibration, FAR 0.001" in r.stdout, r.stdout + r.stderr
