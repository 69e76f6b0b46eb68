import io

import numpy as np
import pytest
from PIL import Image

from lrface.data.images import BadImage, DecodeLimits, decode_rgb, load_rgb, read_bytes


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def _reason(data: bytes, limits: DecodeLimits | None = None) -> str:
    with pytest.raises(BadImage) as e:
        decode_rgb(data, "x/file.img", limits or DecodeLimits())
    assert "x/file.img" in str(e.value)
    return e.value.reason


def test_bad_bytes_have_reasons():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    jpeg = _png(rgb, format="JPEG", quality=90)
    assert _reason(jpeg[: len(jpeg) // 2]) == "truncated image"
    assert _reason(b"hello, I am a text file\n" * 10) == "not an image"
    assert _reason(_png(rgb.resize((10, 10)))) == "too small"
    assert _reason(_png(rgb.resize((1200, 1000))), DecodeLimits(max_pixels=1_000_000)) == "too large"


def test_empty_and_unreadable_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(BadImage, match="empty file"):
        read_bytes(tmp_path / "empty.jpg")
    (tmp_path / "ghost.jpg").symlink_to(tmp_path / "does-not-exist.jpg")
    with pytest.raises(BadImage) as e:
        read_bytes(tmp_path / "ghost.jpg")
    assert e.value.reason == "unreadable" and "ghost.jpg" in str(e.value)
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(BadImage, match="unreadable"):
        load_rgb(tmp_path / "dir.jpg")


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16", "LA"])
def test_every_mode_becomes_rgb(mode):
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    if mode == "I;16":
        arr16 = (rng.integers(0, 65535, (40, 48))).astype(np.uint16)
        img = Image.fromarray(arr16)
        assert img.mode.startswith("I;16")
        data = _png(img)
        out = decode_rgb(data, "16bit.png")
        expected = np.round(arr16 / 65535 * 255).astype(np.uint8)
        assert np.abs(out[..., 0].astype(int) - expected).max() <= 1
    else:
        img = base.convert(mode)
        data = _png(img, format="TIFF" if mode == "CMYK" else "PNG")
        out = decode_rgb(data, f"img.{mode}")
    assert out.dtype == np.uint8 and out.shape == (40, 48, 3)


def test_rgba_is_composited_on_black():
    img = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    out = decode_rgb(_png(img), "transparent.png")
    assert out.max() == 0


def test_exif_orientation_is_applied():
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    data = _png(img, format="JPEG", exif=exif.tobytes(), quality=95)
    out = decode_rgb(data, "rotated.jpg")
    assert out.shape == (60, 40, 3)  # displayed upright: width and height swapped
    assert out[:25].mean() > 200 and out[35:].mean() < 50  # white half now on top
