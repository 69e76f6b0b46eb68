"""The SurvFace protocol on a fixture in the official layout, made from real LFW faces."""

import numpy as np
import pytest
from PIL import Image

from lrface.data.images import BadImage
from lrface.eval.survface import FARS, evaluate_survface
from lrface.restoration import Bicubic
from tests.conftest import LFW_DIR


def _fixture(tmp_path, n_ids=10):
    from scipy.io import savemat

    from lrface.data.sources import read_lfw_pairs

    base = tmp_path / "Face_Verification_Test_Set"
    (base / "verification_images").mkdir(parents=True)
    same_pairs = [p for p in read_lfw_pairs(LFW_DIR / "pairs.txt") if p.same][:n_ids]
    names = []
    for i, p in enumerate(same_pairs):
        for j, rel in enumerate((p.a, p.b)):
            img = Image.open(LFW_DIR / "lfw-deepfunneled" / rel).crop((70, 60, 180, 190))
            name = f"{i}_cam{j}.jpg"
            img.resize((24, 28), Image.Resampling.BICUBIC).save(base / "verification_images" / name)
        names.append((f"{i}_cam0.jpg", f"{i}_cam1.jpg"))
    pos = np.empty((n_ids, 2), dtype=object)
    neg = np.empty((n_ids, 2), dtype=object)
    for i in range(n_ids):
        pos[i] = names[i]
        neg[i] = (names[i][0], names[(i + 3) % n_ids][1])
    savemat(base / "positive_pairs_names.mat", {"positive_pairs_names": pos})
    savemat(base / "negative_pairs_names.mat", {"negative_pairs_names": neg})
    return base


def test_survface_protocol_on_official_layout(tmp_path, frnet):
    _fixture(tmp_path)
    res = evaluate_survface(frnet, tmp_path, Bicubic())
    assert res.pairs == 20
    assert set(res.tar) == set(FARS)
    assert all(0.0 <= v <= 1.0 for v in res.tar.values())
    assert res.tar[0.3] >= res.tar[0.1] >= res.tar[0.01] >= res.tar[0.001]
    assert res.auc > 0.6  # real faces of the same people score higher than different people
    assert res.acc > 0.6  # and the 10-fold accuracy says so too (chance is 0.5)
    m = res.metrics()
    assert m["survface/auc"] == res.auc and m["survface/acc"] == res.acc
    assert m["survface/tar@far=0.001"] == res.tar[0.001]


def test_survface_missing_image_is_named(tmp_path, frnet):
    base = _fixture(tmp_path, n_ids=4)
    (base / "verification_images" / "2_cam1.jpg").unlink()
    with pytest.raises(BadImage, match="2_cam1.jpg"):
        evaluate_survface(frnet, tmp_path, Bicubic())
