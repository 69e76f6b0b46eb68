import numpy as np
import pytest

from lrface.data.sources import (
    PairsFileError,
    identity_folders,
    pair_identities,
    pair_images,
    read_lfw_pairs,
    read_survface_pairs,
)
from lrface.data.splits import SplitError, assign_split, check_disjoint, training_records
from tests.conftest import LFW_DIR


def test_real_lfw_pairs_protocol():
    pairs = read_lfw_pairs(LFW_DIR / "pairs.txt")
    assert len(pairs) == 6000
    assert len(pair_images(pairs)) == 7701 and len(pair_identities(pairs)) == 4281
    for k in range(10):
        fold = [p for p in pairs if p.fold == k]
        assert len(fold) == 600 and sum(p.same for p in fold) == 300
        assert all(p.same for p in fold[:300]) and not any(p.same for p in fold[300:])
    assert pairs[0].a == "Abel_Pacheco/Abel_Pacheco_0001.jpg" and pairs[0].line == 2


def _write_pairs(path, body, header="2 1"):
    path.write_text(header + "\n" + "\n".join(body) + "\n")
    return path


def test_pairs_file_errors_name_the_line(tmp_path):
    ok = ["A 1 2", "A 1 B 1", "C 1 2", "C 2 D 1"]
    assert len(read_lfw_pairs(_write_pairs(tmp_path / "ok.txt", ok))) == 4
    with pytest.raises(PairsFileError, match="bad.txt:4"):
        read_lfw_pairs(_write_pairs(tmp_path / "bad.txt", ["A 1 2", "A 1 B 1", "C one 2", "C 2 D 1"]))
    with pytest.raises(PairsFileError, match="found 3"):
        read_lfw_pairs(_write_pairs(tmp_path / "short.txt", ok[:3]))
    with pytest.raises(PairsFileError, match="order.txt:2: expected a same-identity"):
        read_lfw_pairs(_write_pairs(tmp_path / "order.txt", ["A 1 B 1", "A 1 2", "C 1 2", "C 2 D 1"]))
    with pytest.raises(PairsFileError, match="hdr.txt:1"):
        read_lfw_pairs(_write_pairs(tmp_path / "hdr.txt", ok, header="ten"))


def test_identity_folders(tmp_path):
    for ident, names in {"b": ["2.jpg", "1.png", "notes.txt"], "a": ["x.JPG"]}.items():
        (tmp_path / ident).mkdir()
        for n in names:
            (tmp_path / ident / n).write_bytes(b"x")
    (tmp_path / "stray.jpg").write_bytes(b"x")
    recs = list(identity_folders(tmp_path, "ds"))
    assert [r.sample_id for r in recs] == ["ds/a/x.JPG", "ds/b/1.png", "ds/b/2.jpg"]
    assert recs[1].identity == "ds/b" and recs[1].rel_path == "b/1.png"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list(identity_folders(tmp_path / "nowhere", "ds"))


def test_training_set_is_identity_disjoint_from_test_pairs(tmp_path):
    pairs = _write_pairs(tmp_path / "pairs.txt", ["Ann 1 2", "Ann 1 Bob 1", "Cy 1 2", "Cy 2 Dan 1"])
    root = tmp_path / "lfw"
    for ident in ["Ann", "Bob", "Cy", "Dan", "Eve", "Fay"]:
        (root / ident).mkdir(parents=True)
        (root / ident / f"{ident}_0001.jpg").write_bytes(b"x")
    celeba = tmp_path / "celeba"
    (celeba / "101").mkdir(parents=True)
    (celeba / "101" / "a.jpg").write_bytes(b"x")
    recs = training_records([("celeba", celeba), ("lfw", root)], pairs)
    assert {r.identity for r in recs} == {"celeba/101", "lfw/Eve", "lfw/Fay"}
    # A user's own folder named like a test identity (any case) is caught too.
    (celeba / "ann").mkdir()
    (celeba / "ann" / "b.jpg").write_bytes(b"x")
    assert "celeba/ann" not in {r.identity for r in training_records([("celeba", celeba)], pairs)}
    with pytest.raises(SplitError, match="lfw/Ann"):
        check_disjoint(list(identity_folders(root, "lfw")), {"Ann"})
    assert len(training_records([("celeba", celeba), ("lfw", root)], pairs, limit=2)) == 2


def test_real_training_set_is_disjoint_from_lfw_pairs():
    from tests.conftest import CELEBA_DIR

    pairs = read_lfw_pairs(LFW_DIR / "pairs.txt")
    recs = training_records([("celeba", CELEBA_DIR), ("lfw", LFW_DIR / "lfw-deepfunneled")], LFW_DIR / "pairs.txt")
    assert len(recs) == 4208 + 1549
    test_ids = pair_identities(pairs)
    assert not {r.identity.split("/", 1)[1] for r in recs} & test_ids


def test_val_split_is_stable_by_identity():
    ids = [f"celeba/{i}" for i in range(2000)]
    val = [i for i in ids if assign_split(i, 0.1, 0) == "val"]
    assert 150 < len(val) < 250
    assert val == [i for i in ids if assign_split(i, 0.1, 0) == "val"]
    assert val != [i for i in ids if assign_split(i, 0.1, 1) == "val"]


def test_survface_reader_on_official_layout(tmp_path):
    from scipy.io import savemat

    base = tmp_path / "Face_Verification_Test_Set"
    (base / "verification_images").mkdir(parents=True)
    pos = np.empty((20, 2), dtype=object)
    neg = np.empty((20, 2), dtype=object)
    for i in range(20):
        pos[i] = [f"{i}_cam1_1.jpg", f"{i}_cam2_1.jpg"]
        neg[i] = [f"{i}_cam1_1.jpg", f"{(i + 1) % 20}_cam1_1.jpg"]
    savemat(base / "positive_pairs_names.mat", {"positive_pairs_names": pos})
    savemat(base / "negative_pairs_names.mat", {"negative_pairs_names": neg})
    pairs = read_survface_pairs(tmp_path)
    assert len(pairs) == 40 and sum(p.same for p in pairs) == 20
    assert pairs[0].a == "verification_images/0_cam1_1.jpg" and pairs[0].b == "verification_images/0_cam2_1.jpg"
    assert pairs[20].b == "verification_images/1_cam1_1.jpg"
    for k in range(10):
        fold = [p for p in pairs if p.fold == k]
        assert len(fold) == 4 and sum(p.same for p in fold) == 2
    savemat(base / "negative_pairs_names.mat", {"wrong_name": neg})
    with pytest.raises(PairsFileError, match="negative_pairs_names"):
        read_survface_pairs(tmp_path)
