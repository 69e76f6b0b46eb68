"""Dataset readers: they yield image paths with identities (and pairs), nothing else.

* :func:`identity_folders` — ``<root>/<identity>/<image>`` (LFW, CelebA, CASIA-WebFace, your own);
* :func:`read_lfw_pairs` — LFW View-2 ``pairs.txt`` (10 folds x (300 same + 300 different));
* :func:`read_survface_pairs` — QMUL-SurvFace verification (``positive_pairs_names.mat``,
  ``negative_pairs_names.mat``, ``verification_images/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class ImageRecord:
    """One input image: a stable id, its identity and where it is."""

    sample_id: str  # "<dataset>/<relative path>", unique across datasets
    identity: str  # "<dataset>/<identity folder>"
    path: str  # absolute path
    rel_path: str  # relative to the dataset root


class PairsFileError(ValueError):
    """A malformed pairs file; the message names the file and line."""


def identity_folders(
    root: str | Path, dataset: str, identities: set[str] | None = None
) -> Iterator[ImageRecord]:
    """Every image file under ``root/<identity>/`` in sorted order.

    Files with other extensions are skipped (they are not images by name); entries that look
    like images but cannot be read (broken links, directories) are still yielded so the
    aligner can account for them as rejected.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    for ident in sorted(os.listdir(root)):
        if identities is not None and ident not in identities:
            continue
        folder = root / ident
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            rel = f"{ident}/{name}"
            yield ImageRecord(f"{dataset}/{rel}", f"{dataset}/{ident}", str(folder / name), rel)


@dataclass(frozen=True)
class Pair:
    """A verification pair; ``a`` is the gallery image, ``b`` the probe (relative paths)."""

    fold: int
    same: bool
    a: str
    b: str
    line: int


def lfw_image_path(name: str, index: int) -> str:
    return f"{name}/{name}_{index:04d}.jpg"


def read_lfw_pairs(path: str | Path) -> list[Pair]:
    """Parse LFW View-2 ``pairs.txt``: header ``<folds> <n>``, then per fold n same + n different.

    Fold counts and same/different order are checked; every error names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    lines = path.read_text().splitlines()
    if not lines:
        raise PairsFileError(f"{path}: empty pairs file")
    header = lines[0].split()
    try:
        n_folds, per_half = int(header[0]), int(header[1])
    except (IndexError, ValueError) as e:
        raise PairsFileError(f"{path}:1: bad header {lines[0]!r}, expected '<folds> <pairs>'") from e
    body = [(i + 2, ln) for i, ln in enumerate(lines[1:]) if ln.strip()]
    expected = n_folds * 2 * per_half
    if len(body) != expected:
        raise PairsFileError(
            f"{path}: header promises {n_folds} folds x {2 * per_half} pairs = {expected} lines, "
            f"found {len(body)}"
        )
    pairs: list[Pair] = []
    for k, (lineno, ln) in enumerate(body):
        fold, pos = divmod(k, 2 * per_half)
        want_same = pos < per_half
        f = ln.split()
        try:
            if len(f) == 3:
                pair = Pair(fold, True, lfw_image_path(f[0], int(f[1])), lfw_image_path(f[0], int(f[2])), lineno)
            elif len(f) == 4:
                pair = Pair(fold, False, lfw_image_path(f[0], int(f[1])), lfw_image_path(f[2], int(f[3])), lineno)
            else:
                raise ValueError(f"{len(f)} fields")
        except ValueError as e:
            raise PairsFileError(f"{path}:{lineno}: malformed pair line {ln!r} ({e})") from e
        if pair.same != want_same:
            kind = "same-identity" if want_same else "different-identity"
            raise PairsFileError(
                f"{path}:{lineno}: expected a {kind} line at position {pos} of fold {fold}, got {ln!r}"
            )
        pairs.append(pair)
    return pairs


def pair_images(pairs: list[Pair]) -> list[str]:
    """Distinct relative image paths used by ``pairs``, sorted."""
    return sorted({p.a for p in pairs} | {p.b for p in pairs})


def pair_identities(pairs: list[Pair]) -> set[str]:
    """Identity folder names used by ``pairs``."""
    return {p.a.split("/")[0] for p in pairs} | {p.b.split("/")[0] for p in pairs}


def lfw_pair_records(pairs: list[Pair], images_root: str | Path, dataset: str = "lfw") -> list[ImageRecord]:
    """Records for every distinct image the pairs use (missing files stay in, to be rejected)."""
    root = Path(images_root)
    return [
        ImageRecord(f"{dataset}/{rel}", f"{dataset}/{rel.split('/')[0]}", str(root / rel), rel)
        for rel in pair_images(pairs)
    ]


def read_survface_pairs(root: str | Path, n_folds: int = 10) -> list[Pair]:
    """QMUL-SurvFace verification pairs from ``<root>/Face_Verification_Test_Set``.

    Each ``.mat`` holds a cell array (``positive_pairs_names`` / ``negative_pairs_names``) of
    N x 2 image file names in ``verification_images/``. Folds interleave positives and negatives
    so each fold is balanced: pair i of each kind goes to fold ``i * n_folds // N``.
    """
    from scipy.io import loadmat

    base = Path(root) / "Face_Verification_Test_Set"
    out: list[Pair] = []
    for same, stem in ((True, "positive_pairs_names"), (False, "negative_pairs_names")):
        mat_path = base / f"{stem}.mat"
        if not mat_path.is_file():
            raise FileNotFoundError(f"SurvFace pairs file not found: {mat_path}")
        try:
            mat = loadmat(mat_path)
        except Exception as e:
            raise PairsFileError(f"{mat_path}: cannot read .mat file: {e}") from e
        if stem not in mat:
            keys = [k for k in mat if not k.startswith("__")]
            raise PairsFileError(f"{mat_path}: no variable {stem!r} (has {keys})")
        cells = mat[stem]
        if cells.ndim != 2 or cells.shape[1] != 2:
            raise PairsFileError(f"{mat_path}: {stem} must be N x 2, got {cells.shape}")
        n = cells.shape[0]
        for i in range(n):
            a, b = (_mat_str(cells[i, j]) for j in (0, 1))
            out.append(Pair(i * n_folds // n, same, f"verification_images/{a}", f"verification_images/{b}", i + 1))
    return out


def _mat_str(cell: object) -> str:
    import numpy as np

    v = cell
    while isinstance(v, np.ndarray):
        v = v.item() if v.size == 1 else v.ravel()[0]
    return str(v)
