"""One way from an image to a feature: for the same real face, the features evaluation computes
from the shards equal the ones ``lrface verify`` computes from the image (LR faces made alike,
SR output brought to 112x96 alike, the same FRNet)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lrface.data.align import face_width, read_landmarks_file, warp_face
from lrface.data.degrade import DegradeConfig, make_lr
from lrface.data.images import decode_png, encode_png, load_rgb
from lrface.data.shards import lr_column
from lrface.eval.lfw import embed_rows
from lrface.inference import DetectedFace, FaceVerifier, InferenceConfig, sr_factor
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.restoration import Bicubic, SRNetRestorer
from lrface.sizes import FACTOR_SIZES
from tests.conftest import LFW_DIR

REL = "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"


@pytest.mark.parametrize("with_srnet", [False, True])
def test_evaluation_and_verify_give_the_same_feature_for_the_same_face(frnet, with_srnet):
    import torch

    torch.manual_seed(0)
    srnet = SRNet(SRNetConfig(n_feats=8, n_blocks=1)).eval() if with_srnet else None
    image = load_rgb(LFW_DIR / "lfw-deepfunneled" / REL)
    lm = read_landmarks_file(LFW_DIR / "reference_landmarks.txt")[REL]

    # inference: detect (here: the reference landmarks), crop the low-resolution face, embed
    verifier = FaceVerifier(frnet, srnet, InferenceConfig(sr_below_px=10_000, threshold=0.5))
    face = DetectedFace((0.0, 0.0, 1.0, 1.0), 1.0, lm.tolist(), face_width(lm), 1)
    route, size, crop = verifier._crop(image, face, REL)
    assert size == FACTOR_SIZES[sr_factor(face.width_px)]
    from_verify = verifier.embed_faces([crop], [route])[0]

    # evaluation: the aligned face as the shards store it, its LR column, the restorer, embed_rows
    hr_png = encode_png(warp_face(image, lm))
    lr = make_lr(decode_png(hr_png), DegradeConfig(sizes=(size,)))[size]
    table = pa.table({lr_column(size): [encode_png(lr)]})
    restorer = SRNetRestorer(srnet) if srnet is not None else Bicubic()
    from_eval = embed_rows(frnet, table, np.array([0]), lr_column(size), restorer)[0]

    assert np.array_equal(crop, lr)  # the same LR face, pixel for pixel
    np.testing.assert_allclose(from_verify, from_eval, rtol=0, atol=1e-6)


def test_verify_makes_lr_faces_with_the_kernel_the_shards_used(frnet_ckpt, tmp_path):
    from lrface.config import load_params
    from lrface.data.degrade import downsample
    from lrface.inference import load_verifier
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml", {"paths.work_dir": str(tmp_path), "degrade.kernel": "box",
                                                 "paths.frnet_checkpoint": str(frnet_ckpt),
                                                 "inference.sr_below_px": 10_000})
    v = load_verifier(params, None, threshold=0.5)
    image = load_rgb(LFW_DIR / "lfw-deepfunneled" / REL)
    lm = read_landmarks_file(LFW_DIR / "reference_landmarks.txt")[REL]
    _, size, crop = v._crop(image, DetectedFace((0.0, 0.0, 1.0, 1.0), 1.0, lm.tolist(), face_width(lm), 1), REL)
    h, w = (int(x) for x in size.split("x"))
    assert np.array_equal(crop, downsample(warp_face(image, lm), (h, w), "box"))
    assert not np.array_equal(crop, downsample(warp_face(image, lm), (h, w), "bicubic"))
