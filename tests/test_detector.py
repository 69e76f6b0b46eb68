"""The torch MTCNN (lrface.data.detector): its pieces, bad inputs, and equivalence with the
``mtcnn`` package (TensorFlow) on real LFW and CelebA-wild images."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from lrface.data import detector as det
from lrface.data.align import read_landmarks_file
from lrface.data.degrade import small_face_frame
from lrface.data.detector import TorchMTCNN
from lrface.data.images import decode_rgb, load_rgb
from lrface.data.mtcnn_boxes import nms
from lrface.data.mtcnn_pyramid import (
    _area_matrix,
    area_pyramid,
    area_resize,
    crop_and_resize,
    pyramid_scales,
)
from lrface.models.mtcnn import PNet, SamePool
from tests.conftest import CELEBA_DIR, LFW_DIR, REPO


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread, as an alignment actor runs the detector (after conftest's share, which
    would give each test cores / workers threads); the count before is put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def detector() -> TorchMTCNN:
    return TorchMTCNN(threads=1)


def lfw(rel: str) -> np.ndarray:
    return load_rgb(LFW_DIR / "lfw-deepfunneled" / rel)


def same_faces(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.allclose(x.box, y.box, atol=1e-3) and np.allclose(x.landmarks, y.landmarks, atol=1e-3)
        for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------------------------ pieces


LFW_IMAGE = LFW_DIR / "lfw-deepfunneled" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


def test_import_detection_and_alignment_never_load_tensorflow():
    code = ("import sys, numpy as np\n"
            "import lrface.data.detector as d\n"
            "assert 'tensorflow' not in sys.modules and 'mtcnn' not in sys.modules, 'imported'\n"
            "d.TorchMTCNN().detect(np.zeros((64, 64, 3), np.uint8))\n"
            "from lrface.inference import FaceVerifier\n"
            "v = FaceVerifier(None, None)\n"
            "assert type(v.detector).__name__ == 'TorchMTCNN'\n"
            "v.detect([np.zeros((60, 80, 3), np.uint8)])\n"
            "from lrface.data.align import AlignConfig, Aligner\n"  # what an align actor runs
            f"r = Aligner(AlignConfig()).align({str(LFW_IMAGE)!r})\n"
            "assert r.ok and r.landmark_source == 'mtcnn', r\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mtcnn'))\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_package_nms_is_not_greedy():
    # B overlaps A and is dropped; C overlaps only B, and is dropped all the same (the package's
    # rule: any higher-scored box, kept or not). A greedy NMS would keep C.
    boxes = np.array([[0, 0, 0, 10, 10, 0.9], [0, 3, 0, 13, 10, 0.8], [0, 6, 0, 16, 10, 0.7],
                      [1, 6, 0, 16, 10, 0.5]])
    kept = nms(boxes[[2, 0, 3, 1]], 0.5, "union")  # sorted by score inside, grouped by image
    assert kept[:, 5].tolist() == [0.9, 0.5]
    # "min": a small box inside a big one overlaps it fully; "union" sees IoU 0.25 and keeps both
    nested = np.array([[0, 0, 0, 20, 20, 0.9], [0, 5, 5, 15, 15, 0.8]])
    assert len(nms(nested, 0.7, "min")) == 1 and len(nms(nested, 0.7, "union")) == 2
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (1500, 2))
    many = np.concatenate([np.zeros((1500, 1)), xy, xy + 30, rng.random((1500, 1))], axis=1)
    kept = nms(many, 0.5, "union")  # blocked pairwise test == the full n x n rule
    order = many[np.argsort(many[:, 5])[::-1]]
    x = order[:, 1:5]
    iw = np.maximum(0, np.minimum(x[:, None, 2], x[None, :, 2]) - np.maximum(x[:, None, 0], x[None, :, 0]))
    ih = np.maximum(0, np.minimum(x[:, None, 3], x[None, :, 3]) - np.maximum(x[:, None, 1], x[None, :, 1]))
    area = (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    iou = iw * ih / (area[:, None] + area[None, :] - iw * ih)
    expect = order[((iou > 0.5) & np.triu(np.ones_like(iou, bool), 1)).sum(0) == 0]
    assert 0 < len(kept) < len(many) and np.array_equal(kept, expect)


def test_area_resize_is_tensorflows_area_average():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = area_resize(x, 4, 3)
    # rows: 6 -> 4 (cells of 1.5 input rows); cols: 6 -> 3 (pairs). Reference: x2 nearest, block mean.
    ref = x.repeat_interleave(2, 2).unfold(2, 3, 3).mean(-1).unfold(3, 2, 2).mean(-1)
    assert out.shape == (2, 3, 4, 3)
    assert torch.allclose(out, ref, atol=1e-4)


def test_area_pyramid_levels_equal_single_resizes():
    """Levels computed together (rows of several levels in one product) equal each resized alone."""
    x = torch.from_numpy(np.random.default_rng(1).random((3, 3, 61, 47), np.float32))
    sizes = [(36, 28), (25, 19), (18, 14), (12, 12), (61, 47), (7, 30)]
    levels = list(area_pyramid(x, sizes))
    for (h, w), got in zip(sizes, levels, strict=True):
        assert got.shape == (3, 3, h, w) and got.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(got, area_resize(x, h, w), atol=1e-6)
    assert torch.allclose(levels[4], x, atol=1e-6)  # same size: the identity


def test_area_weights_are_a_valid_csr_matrix():
    """Each row's columns distinct and increasing (a tap clamped onto the last cell is merged into
    it: 14 -> 13 has one), checked by torch's own CSR invariants; rows sum to the cell's span."""
    for n_in in range(1, 120):
        for n_out in range(1, n_in + 1):
            crow, cols, vals = _area_matrix(n_in, (n_out,))
            torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols), torch.from_numpy(vals),
                                    (n_out, n_in), check_invariants=True)
            sums = np.add.reduceat(vals, crow[:-1]) if len(vals) else np.zeros(0)
            assert np.allclose(sums, n_in / n_out, rtol=1e-5), (n_in, n_out)


def test_area_resize_non_integer_ratios_both_ways():
    x = torch.from_numpy(np.random.default_rng(3).random((2, 3, 12, 10), np.float32))
    out = area_resize(x, 8, 4)  # rows 12 -> 8 (cells of 1.5), columns 10 -> 4 (cells of 2.5)
    ref = x.double().repeat_interleave(2, 2).repeat_interleave(2, 3)  # 24 x 20: cells of 3 x 5
    ref = ref.unfold(2, 3, 3).mean(-1).unfold(3, 5, 5).mean(-1)
    assert out.shape == (2, 3, 8, 4) and torch.allclose(out.double(), ref, atol=1e-5)


def test_crop_and_resize_boxes_in_any_image_order():
    x = torch.from_numpy(np.random.default_rng(2).random((3, 3, 40, 40), np.float32))
    boxes = np.array([[2, 1, 2, 30, 31], [0, -5, 3, 20, 28], [2, 10, 10, 39, 39], [1, 4, 4, 12, 12]], np.float64)
    got = crop_and_resize(x, boxes, 12)
    for j, b in enumerate(boxes):
        assert torch.allclose(got[j], crop_and_resize(x, b[None], 12)[0], atol=1e-6), j


def test_crop_and_resize_samples_on_side_minus_one():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 3, 24, 30), np.float32))
    whole = crop_and_resize(x[:1, :, :, :24], np.array([[0, 0, 0, 24, 24]], np.float64), 24)
    assert torch.allclose(whole[0], x[0, :, :, :24], atol=1e-5)  # x2 / W = 1 samples column W - 1: identity
    box = np.array([[1, 3.3, 2.7, 20.9, 17.2]])
    got = crop_and_resize(x, box, 5)[0].numpy()
    img = x[1].numpy()
    ys = box[0, 2] / 24 * 23 + np.arange(5) * (box[0, 4] - box[0, 2]) / 24 * 23 / 4
    xs = box[0, 1] / 30 * 29 + np.arange(5) * (box[0, 3] - box[0, 1]) / 30 * 29 / 4
    for i, yy in enumerate(ys):
        for j, xx in enumerate(xs):
            y0, x0 = int(yy), int(xx)
            fy, fx = yy - y0, xx - x0
            ref = (img[:, y0, x0] * (1 - fy) * (1 - fx) + img[:, y0, x0 + 1] * (1 - fy) * fx
                   + img[:, y0 + 1, x0] * fy * (1 - fx) + img[:, y0 + 1, x0 + 1] * fy * fx)
            assert np.allclose(got[:, i, j], ref, atol=1e-5)
    outside = crop_and_resize(x, np.array([[0, 40, 30, 60, 50], [0, -10, -10, 5, 5]], np.float64), 24)
    assert outside[0].abs().max() == 0  # extrapolation value 0 everywhere
    assert outside[1, :, :12, :12].abs().max() == 0 and outside[1, :, -1, -1].abs().max() > 0


def test_same_pool_pads_like_tensorflow():
    x = torch.arange(25, dtype=torch.float32).reshape(1, 1, 5, 5)
    out = SamePool(3, 2)(x)  # total pad 2: one -inf row/col before and after
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    # equal to explicit TensorFlow "same" padding, any size and parity, either memory layout
    for kernel, stride in ((2, 2), (3, 2), (2, 1), (3, 3)):
        pool = SamePool(kernel, stride)
        for h, channels in [(h, 2) for h in range(1, 14)] + [(h, 16) for h in range(2, 14)]:
            for w in (1, 2, 5, 8, 11):  # 16 channels, channels-last: torch's own pooling
                x = torch.randn(1, channels, h, w)
                (t, b), (left, r) = pool._pads(h), pool._pads(w)
                ref = torch.nn.functional.max_pool2d(
                    torch.nn.functional.pad(x, (left, r, t, b), value=float("-inf")), kernel, stride)
                assert torch.equal(pool(x), ref), (kernel, stride, h, w)
                assert torch.equal(pool(x.contiguous(memory_format=torch.channels_last)), ref), (kernel, stride, h, w)


def test_fast_layers_compute_torchs_values():
    """The channels-last pooling and PReLU give bitwise what torch's own layers give."""
    from lrface.models.mtcnn import MaxPool, PReLU

    for shape in ((2, 10, 31, 30), (3, 28, 22, 22), (1, 48, 9, 9), (4, 64, 3, 3), (2, 16, 7, 6)):
        x = torch.randn(*shape)
        for t in (x, x.contiguous(memory_format=torch.channels_last)):
            assert torch.equal(MaxPool(3, 2)(t), torch.nn.functional.max_pool2d(t, 3, 2))
            prelu = PReLU(shape[1])
            with torch.no_grad():
                prelu.weight.uniform_(-0.5, 0.5)
            got = prelu(t)
            assert torch.equal(got, torch.nn.functional.prelu(t, prelu.weight))
            assert got.is_contiguous(memory_format=torch.channels_last) == t.is_contiguous(
                memory_format=torch.channels_last) or t.is_contiguous()
    x = torch.randn(2, 4, 5, 6).contiguous(memory_format=torch.channels_last)
    shared = torch.nn.PReLU()  # one slope for all channels: torch's own path
    assert torch.equal(PReLU()(x), shared(x))
    x.requires_grad_(True)  # with autograd, pooling still works and differentiates
    MaxPool(3, 2)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    x = torch.randn(2, 3, 37, 41)  # the area resize reads any layout the same
    assert torch.equal(area_resize(x, 13, 17), area_resize(x.contiguous(memory_format=torch.channels_last), 13, 17))


def test_pyramid_matches_the_package_rule():
    assert len(pyramid_scales(250, 250, 20)) == 8  # round(log(250/12)/log(1/0.709) - 1)
    assert pyramid_scales(250, 250, 20)[0] == pytest.approx(0.6)
    assert len(pyramid_scales(20, 500, 20)) == 0 and len(pyramid_scales(1, 1, 20)) == 0
    # the smallest level of the default pyramid still holds one P-Net window
    for side in range(24, 2000, 7):
        assert int(side * pyramid_scales(side, side, 20)[-1]) >= 12


def test_channels_last_weights_and_torch_pooling_change_no_bit(monkeypatch):
    """What TorchMTCNN runs (channels-last weights; R-/O-Net maps pooled by torch's own
    max_pool2d, no -inf padding copy) gives bitwise what contiguous weights give, on the
    channels-last maps the detector feeds its nets."""
    from lrface.models.mtcnn import ONet, RNet

    torch.manual_seed(0)
    for net, shape in ((PNet(), (2, 3, 40, 37)), (RNet(), (5, 3, 24, 24)), (ONet(), (5, 3, 48, 48))):
        net.eval()
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = net(x)
            got = copy.deepcopy(net).to(memory_format=torch.channels_last)(x)
        assert all(torch.equal(a, b) for a, b in zip(ref, got, strict=True)), type(net).__name__
    pads = []
    real_pad = torch.nn.functional.pad
    monkeypatch.setattr(torch.nn.functional, "pad", lambda *a, **k: pads.append(1) or real_pad(*a, **k))
    x = torch.randn(3, 28, 22, 22).contiguous(memory_format=torch.channels_last)  # R-Net's first pool
    with torch.inference_mode():
        out = SamePool(3, 2)(x)
    assert out.shape == (3, 28, 11, 11) and not pads  # torch's pooling with ceil mode, no pad copy


def test_pnet_strips_equal_one_pass(monkeypatch):
    d = TorchMTCNN.__new__(TorchMTCNN)
    d.pnet = PNet().eval()
    level = torch.randn(2, 3, 61, 47)
    with torch.inference_mode():
        whole = d.pnet(level)
        monkeypatch.setattr(det, "PNET_TILE_PIXELS", 2 * 47 * 16)  # 3 output rows per strip
        strips = d._pnet(level)
    assert [t.shape for t in strips] == [t.shape for t in whole]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(strips, whole, strict=True))


def test_weights_must_fit(tmp_path):
    from lrface.data.mtcnn_weights import load_keras_weights

    with pytest.raises(ValueError, match="does not fit"):
        load_keras_weights(PNet(), [np.zeros((3, 3, 3, 11))] + [np.zeros(1)] * 12)
    with pytest.raises(FileNotFoundError, match="pnet.lz4"):
        TorchMTCNN(weights_dir=tmp_path)


# --------------------------------------------------------------------------------- behaviour


def test_finds_the_lfw_face_with_reference_landmarks(detector):
    ref = read_landmarks_file(LFW_DIR / "reference_landmarks.txt")
    rel = "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    faces = detector.detect(lfw(rel))
    assert faces and faces[0].score > 0.99
    f = faces[0]
    assert f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float64
    assert f.box[0] < f.landmarks[:, 0].min() and f.landmarks[:, 0].max() < f.box[2]
    assert np.linalg.norm(f.landmarks - ref[rel], axis=1).mean() < 4.0
    assert f.landmarks[0, 0] != round(f.landmarks[0, 0])  # float, not rounded


def test_batch_equals_single_and_threads_share_one_detector(detector):
    rels = ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0001.jpg",
            "Alan_Greenspan/Alan_Greenspan_0001.jpg", "Al_Gore/Al_Gore_0001.jpg"]
    images = [lfw(r) for r in rels]
    single = [detector.detect(im) for im in images]
    assert all(single)
    batch = detector.detect_batch(images)
    # a budget of two images per pass splits the batch; results are unchanged
    small = TorchMTCNN(threads=None, max_pixels=2 * 250 * 250)
    for got in (batch, small.detect_batch(images)):
        assert all(same_faces(a, b) for a, b in zip(single, got, strict=True))
    results: dict[int, list] = {}

    def run(i: int) -> None:
        for _ in range(2):
            results[i] = detector.detect(images[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(same_faces(a, results[i]) for i, a in enumerate(single))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(detector):
    im = lfw("Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    a, b = detector.detect(im), TorchMTCNN(threads=None, device="cuda").detect(im)
    assert len(a) == len(b) and np.allclose(a[0].landmarks, b[0].landmarks, atol=0.05)


# -------------------------------------------------------------------------------- bad inputs


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def test_degenerate_frames_give_no_face(detector):
    for frame in (np.zeros((1, 1, 3), np.uint8), np.zeros((11, 500, 3), np.uint8),
                  np.zeros((250, 250, 3), np.uint8), np.full((300, 200, 3), 255, np.uint8)):
        assert detector.detect(frame) == []
    wide = np.random.default_rng(0).integers(0, 256, (40, 20_000, 3), dtype=np.uint8)
    faces, sec = _timed(lambda: detector.detect(wide))
    assert faces == [] and sec < 30
    line, sec = _timed(lambda: detector.detect(np.zeros((1, 20_000, 3), np.uint8)))
    assert line == [] and sec < 5


def test_bad_arrays_raise_value_error(detector):
    gray = np.zeros((64, 64), np.uint8)
    cases = {
        "HxWx3": [gray, np.zeros((64, 64, 4), np.uint8), np.zeros((2, 64, 64, 3), np.uint8)],
        "uint8": [np.zeros((64, 64, 3), np.uint16), np.zeros((64, 64, 3), np.float32)],
        "empty": [np.zeros((0, 64, 3), np.uint8)],
        "numpy": [[[0, 0, 0]]],
    }
    for match, frames in cases.items():
        for frame in frames:
            with pytest.raises(ValueError, match=match):
                detector.detect(frame)
    with pytest.raises(ValueError, match="one shape"):
        detector.detect_batch([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 65, 3), np.uint8)])
    assert detector.detect_batch([]) == []


def test_max_pixels_refuses_before_allocating():
    small = TorchMTCNN(threads=None, max_pixels=100_000)
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20_000, 20_000, 3))  # a view: 0 bytes
    t = time.perf_counter()
    with pytest.raises(ValueError, match="max_pixels"):
        small.detect(huge)
    assert time.perf_counter() - t < 1
    assert small.detect(np.zeros((300, 300, 3), np.uint8)) == []  # 90,000 pixels: within budget


def test_sixteen_bit_and_grayscale_files_are_decoded_first(detector):
    face = lfw("Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    gray8 = np.array(Image.fromarray(face).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(gray8.astype(np.uint16) * 257).save(buf, format="PNG")  # 16-bit grayscale PNG
    rgb = decode_rgb(buf.getvalue(), "16bit.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (250, 250, 3)
    faces = detector.detect(rgb)
    assert faces and faces[0].score > 0.9


# ------------------------------------------------------------------ equivalence with mtcnn


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _compare(name: str, ref: list, got: list, stats: dict) -> None:
    """Match faces 1:1 (greedy by IoU, at least 0.5); record IoU, landmark error, the unmatched."""
    pairs = sorted(((_iou(a.box, b.box), i, j) for i, a in enumerate(ref) for j, b in enumerate(got)), reverse=True)
    used_a, used_b = set(), set()
    for iou, i, j in pairs:
        if iou < 0.5 or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        err = float(np.abs(ref[i].landmarks - got[j].landmarks).max())
        stats["matched"].append((name, iou, err, ref[i].score))
    stats["unmatched"] += [(name, "mtcnn only", round(ref[i].score, 4), ref[i].box)
                           for i in range(len(ref)) if i not in used_a]
    stats["unmatched"] += [(name, "torch only", round(got[j].score, 4), got[j].box)
                           for j in range(len(got)) if j not in used_b]


@pytest.mark.slow
def test_same_faces_as_the_mtcnn_package_on_real_images(detector):
    pytest.importorskip("tensorflow", reason="the reference detector needs the tf-reference extra")
    from lrface.data.detector_tf import MTCNNDetector

    lfw_files = sorted((LFW_DIR / "lfw-deepfunneled").glob("*/*.jpg"))
    celeba_files = sorted(CELEBA_DIR.glob("*/*.jpg"))
    assert len(lfw_files) > 10_000 and len(celeba_files) > 4_000
    files = lfw_files[:: len(lfw_files) // 130][:130] + celeba_files[:: len(celeba_files) // 130][:130]
    tf_det = MTCNNDetector(threads=1)
    stats: dict[str, list] = {"matched": [], "unmatched": []}
    shapes = set()
    for f in files:
        image = load_rgb(f)
        shapes.add(image.shape)
        _compare(f"{f.parent.name}/{f.name}", tf_det.detect(image), detector.detect(image), stats)
    # every CelebA image that is not 250x250 (whole photos kept where the crop found no face)
    odd = [f for f in celeba_files if Image.open(f).size != (250, 250)]
    for f in odd:
        image = load_rgb(f)
        shapes.add(image.shape)
        _compare(f"{f.parent.name}/{f.name}", tf_det.detect(image), detector.detect(image), stats)
    # inference's path: small faces in 120x160 frames, detected on x4 bicubic copies (480x640)
    marks = read_landmarks_file(LFW_DIR / "reference_landmarks.txt")
    for i, rel in enumerate(sorted(marks)[100:104]):
        frame, _ = small_face_frame(lfw(rel), marks[rel], 24, seed=i)
        up = np.array(Image.fromarray(frame).resize((640, 480), Image.Resampling.BICUBIC))
        shapes.add(up.shape)
        _compare(f"x4 frame of {rel}", tf_det.detect(up), detector.detect(up), stats)
    # one batched pass each (images of one shape), as the align stage runs them
    batch = [load_rgb(f) for f in lfw_files[7:4000:500]]
    for k, (a, b) in enumerate(zip(tf_det.detect_batch(batch), detector.detect_batch(batch), strict=True)):
        _compare(f"batch[{k}]", a, b, stats)

    m = stats["matched"]
    iou = np.array([x[1] for x in m])
    err = np.array([x[2] for x in m])
    n_faces = len(m) + len(stats["unmatched"])
    good = (iou >= 0.95) & (err <= 1.0)
    report = (f"{len(files) + len(odd) + 4} images ({len(shapes)} shapes) + batch of {len(batch)}: {len(m)} faces matched, "
              f"{len(stats['unmatched'])} unmatched; IoU min {iou.min():.5f} median {np.median(iou):.6f}; "
              f"landmark error max {err.max():.4f} px, median {np.median(err):.5f} px; "
              f"{(~good).sum()} matched faces outside IoU 0.95 / 1 px")
    print("\n" + report)
    for name, i, e, s in (x for x, g in zip(m, good, strict=True) if not g):
        print(f"  outside tolerance: {name} IoU {i:.4f} landmarks {e:.2f} px score {s:.4f}")
    for u in stats["unmatched"]:
        print("  unmatched:", u)
    assert len(files) >= 200 and len(m) >= 200, report
    assert good.mean() >= 0.99, report
    assert len(stats["unmatched"]) <= 0.01 * n_faces, report
