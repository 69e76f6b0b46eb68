"""Face sizes and protocol names: the one owner of every size constant in lrface.

FRNet sees aligned faces of ``FACE_SIZE`` (112x96, the SphereFace template). SRNet is trained on
faces ``k`` times smaller for each factor ``k`` of :data:`FACTOR_SIZES`; evaluation names a
cell by the probe's size (``14x12``: probe at 14x12, gallery at 112x96) or by two sizes when
both faces are low-resolution (``14x12-14x12``).
"""

from __future__ import annotations

FACE_HEIGHT = 112
FACE_WIDTH = 96
FACE_SIZE = (FACE_HEIGHT, FACE_WIDTH)  # (height, width)
HR_SIZE = "112x96"
FACTOR_SIZES = {4: "28x24", 8: "14x12", 16: "7x6"}  # downscale factor -> the LR size SRNet learns


def size_name(hw: tuple[int, int]) -> str:
    """(14, 12) -> '14x12' (height x width)."""
    return f"{hw[0]}x{hw[1]}"


def parse_size(name: str) -> tuple[int, int]:
    """'14x12' -> (14, 12)."""
    h, _, w = name.partition("x")
    try:
        return int(h), int(w)
    except ValueError as e:
        raise ValueError(f"bad size {name!r}, expected HEIGHTxWIDTH") from e


def both_lr(size: str) -> str:
    """The label of a pair with both faces at ``size`` (evaluation cells, thresholds): ``14x12-14x12``."""
    return f"{size}-{size}"


def is_both_lr(label: str) -> bool:
    return "-" in label
