"""The align + shards stages end to end on a folder of real faces and every kind of bad input."""

import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from lrface.config import load_params
from lrface.data.align_stage import run_align
from lrface.data.shard_stage import run_shards
from lrface.data.shards import ShardSet
from lrface.data.tensors import iter_face_batches
from tests.conftest import LFW_DIR, REPO

LFW = LFW_DIR / "lfw-deepfunneled"
# Identities absent from pairs.txt (single images), so they are fine as training faces.
GOOD = ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Aaron_Guiel/Aaron_Guiel_0001.jpg",
        "Aaron_Patterson/Aaron_Patterson_0001.jpg", "Aaron_Tippin/Aaron_Tippin_0001.jpg"]


def _make_fixture(root):
    d = root / "faces"
    for rel in GOOD:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LFW / rel, d / rel)
    face = Image.open(LFW / GOOD[0])
    bad = d / "zz_bad"
    bad.mkdir()
    jpeg = (LFW / GOOD[1]).read_bytes()
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (bad / "text.jpg").write_text("this is not an image\n")
    (bad / "empty.jpg").write_bytes(b"")
    face.convert("L").save(bad / "gray.png")
    face.convert("CMYK").save(bad / "cmyk.jpg")
    rgba = face.convert("RGBA")
    rgba.putalpha(255)
    rgba.save(bad / "rgba.png")
    gray16 = (np.array(face.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(bad / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 CW: store the pixels rotated the other way
    face.transpose(Image.Transpose.ROTATE_90).save(bad / "exif.jpg", exif=exif.tobytes(), quality=95)
    face.resize((10, 10)).save(bad / "tiny.jpg")
    face.resize((1200, 1000)).save(bad / "huge.png")
    grad = np.tile(np.linspace(0, 255, 250, dtype=np.uint8), (250, 1))
    Image.fromarray(np.stack([grad] * 3, -1)).save(bad / "noface.png")
    two = Image.new("RGB", (500, 250))
    two.paste(face, (0, 0))
    two.paste(Image.open(LFW / GOOD[2]), (250, 0))
    two.save(bad / "several.jpg", quality=95)
    (bad / "ghost.jpg").symlink_to(root / "missing.jpg")
    (bad / "folder.jpg").mkdir()
    shutil.copy(LFW / GOOD[0], bad / "duplicate.jpg")
    return d


@pytest.mark.slow
def test_stages_account_for_every_input(tmp_path):
    _make_fixture(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"] = {"data_root": str(tmp_path), "work_dir": str(tmp_path / "work"),
                       "frnet_checkpoint": "unused"}
    params["data"]["rows_per_shard"] = 5
    params["data"]["datasets"] = {"fx": {"role": "train", "sources": [{"name": "fx", "root": "faces"}],
                                         "val_fraction": 0.3, "drop_duplicates": True}}
    params["align"].update(workers=1, batch_size=4, max_pixels=1_000_000)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    p = load_params(tmp_path / "params.yaml")

    summary = run_align(p, "fx", progress=False)
    c = summary["counts"]
    assert c["in"] == 4 + 15 and c["in"] == c["aligned"] + c["rejected"]
    assert c["rejected_by_reason"] == {
        "duplicate": 1, "empty file": 1, "no face": 1, "not an image": 1, "too large": 1,
        "too small": 1, "truncated image": 1, "unreadable": 2,
    }
    assert c["aligned"] == 4 + 6  # good + gray, cmyk, rgba, 16-bit, exif, several

    manifest = run_shards(p, "fx")
    assert manifest["counts"] == c
    assert sum(manifest["splits"].values()) == c["aligned"]
    rejected = {r["source_path"]: r["reason"] for r in manifest["rejected"]}
    assert rejected["zz_bad/ghost.jpg"] == rejected["zz_bad/folder.jpg"] == "unreadable"
    assert rejected["zz_bad/duplicate.jpg"] == "duplicate"
    ss = ShardSet(tmp_path / "work" / "fx" / "shards")
    assert [s.rows for s in ss.shards] == [5, 5] and len(ss) == 10
    rows = {r["source_path"]: r for r in ss.read_table().to_pylist()}
    assert rows["zz_bad/several.jpg"]["n_faces"] >= 2
    assert set(rows) >= {"zz_bad/exif.jpg", "zz_bad/sixteen.png", "zz_bad/cmyk.jpg"}
    # the EXIF-rotated copy aligns to (nearly) the same face as the original
    batches = list(iter_face_batches(ss, ["hr_png", "lr_7x6_png"], batch_size=64))
    faces = {sid: hr for b in batches for sid, hr in zip(b["sample_id"], b["hr_png"], strict=True)}
    diff = (faces["fx/zz_bad/exif.jpg"] - faces[f"fx/{GOOD[0]}"]).abs().mean().item()
    assert diff < 0.05
    assert batches[0]["lr_7x6_png"].shape[1:] == (3, 7, 6)
    # Ray Data reads the same shards
    assert ss.ray_dataset(columns=["sample_id"]).count() == 10
    saved = json.loads((tmp_path / "work" / "fx" / "shards" / "manifest.json").read_text())
    assert saved["shards"][0]["sha256"] == ss.shards[0].sha256
