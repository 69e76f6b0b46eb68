import numpy as np
import pytest

from lrface.data.align import (
    SPHEREFACE_TEMPLATE,
    AlignConfig,
    Aligner,
    choose_face,
    read_landmarks_file,
    similarity_transform,
    warp_face,
)
from lrface.data.detection import Face
from lrface.data.detector import TorchMTCNN
from tests.conftest import LFW_DIR


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ rot.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], s * rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_warp_identity_and_landmarks_land_on_template():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (112, 96, 3), dtype=np.uint8)
    out = warp_face(img, SPHEREFACE_TEMPLATE)
    assert out.shape == (112, 96, 3)
    assert np.abs(out.astype(int) - img.astype(int))[2:-2, 2:-2].max() <= 1
    # A face scaled x2 and shifted: warping with its landmarks undoes it.
    big = np.array(__import__("PIL.Image", fromlist=["Image"]).fromarray(img).resize((192, 224)))
    canvas = np.zeros((300, 260, 3), np.uint8)
    canvas[40:264, 30:222] = big
    lm = (SPHEREFACE_TEMPLATE + 0.5) * 2 - 0.5 + np.array([30, 40])
    back = warp_face(canvas, lm)
    assert np.abs(back.astype(int) - img.astype(int))[4:-4, 4:-4].mean() < 12


def test_choose_face_policies():
    lm = np.zeros((5, 2))
    near_center = Face((90, 90, 110, 110), 0.95, lm)
    big = Face((0, 0, 80, 80), 0.91, lm)
    sure = Face((150, 150, 170, 175), 0.999, lm)
    faces = [big, near_center, sure]
    assert choose_face(faces, "center", (200, 200)) is near_center
    assert choose_face(faces, "largest", (200, 200)) is big
    assert choose_face(faces, "confident", (200, 200)) is sure
    with pytest.raises(ValueError, match="policy"):
        choose_face(faces, "first", (200, 200))


@pytest.mark.slow
def test_mtcnn_on_real_lfw_images_agrees_with_reference():
    ref = read_landmarks_file(LFW_DIR / "reference_landmarks.txt")
    rels = sorted(ref)[:24]
    results = Aligner(AlignConfig()).align_many([(str(LFW_DIR / "lfw-deepfunneled" / r), r) for r in rels])
    ok = [(r, res) for r, res in zip(rels, results, strict=True) if res.ok]
    assert len(ok) >= 23
    d = [np.linalg.norm(res.landmarks - ref[r], axis=1).mean() for r, res in ok]
    assert np.mean(d) < 4.0
    assert all(res.face.shape == (112, 96, 3) and res.landmark_source == "mtcnn" for _, res in ok)
    assert all(0.9 <= res.score <= 1.0 for _, res in ok)


def test_landmarks_file_skips_detection(tmp_path):
    rel = "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    line = "\t".join([rel] + [f"{v:.2f}" for v in (SPHEREFACE_TEMPLATE * 2 + 20).ravel()])
    (tmp_path / "lm.txt").write_text(line + "\n")
    ref = read_landmarks_file(tmp_path / "lm.txt")

    class NoDetector:
        def detect_batch(self, images):
            raise AssertionError("detector must not run for listed images")

    res = Aligner(AlignConfig(), ref, detector=NoDetector()).align(LFW_DIR / "lfw-deepfunneled" / rel, rel)
    assert res.ok and res.landmark_source == "file" and np.isnan(res.score)
    (tmp_path / "bad.txt").write_text("a.jpg 1 2 3\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_landmarks_file(tmp_path / "bad.txt")


def test_fallback_landmarks_only_where_no_face_is_found(tmp_path):
    from PIL import Image

    grad = np.tile(np.linspace(0, 255, 250, dtype=np.uint8), (250, 1))
    Image.fromarray(np.stack([grad] * 3, -1)).save(tmp_path / "noface.png")
    lm = SPHEREFACE_TEMPLATE * 2 + 20
    real = "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    fallback = {"noface.png": lm, real: lm + 40}

    al = Aligner(AlignConfig(), detector=TorchMTCNN(threads=None), fallback=fallback)
    a, b = al.align_many([(str(tmp_path / "noface.png"), "noface.png"),
                          (str(LFW_DIR / "lfw-deepfunneled" / real), real)])
    assert a.ok and a.landmark_source == "fallback" and np.array_equal(a.landmarks, lm)
    # the real face keeps MTCNN's landmarks: the eyes of a deep-funneled face, not the fallback's
    assert b.ok and b.landmark_source == "mtcnn" and not np.allclose(b.landmarks, lm + 40)
    assert 95 < b.landmarks[:2, 0].mean() < 155 and 95 < b.landmarks[:2, 1].mean() < 135
