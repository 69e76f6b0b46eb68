"""LFW View-2 cross-resolution verification (6,000 pairs, 10 folds).

The gallery (first image of each pair) stays 112x96; the probe (second image) is taken at a low
resolution (7x6, 14x12, 16x16, 28x24), restored by the method under test and resized to 112x96.
Probes come from the shards (clean, ``lfw/...``) or from the camera chain (surveillance,
``lfw_surv/...``; :mod:`lrface.eval.probes`). A second protocol, "both low-resolution" (size label ``7x6-7x6``), degrades
and restores both faces of each pair: two faces from the same footage, as ``lrface verify`` sees
them; it calibrates the thresholds for that case. Features are ``concat(f(R(x)), f(R(hflip(x))))`` for a
restoration R (:mod:`lrface.restoration`); accuracy follows the 10-fold
recipe in :mod:`lrface.eval.verification`; ROC/AUC/TAR use plain cosine scores over all pairs.

Each distinct image is embedded once per (method, resolution): the 112x96 features of all
7,701 images are shared by the gallery side of every method and by the ``hr`` row, and cached
on disk keyed by the shard manifest and FRNet checkpoint digests.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from lrface.code_digest import RECOGNITION_MODELS, code_digest
from lrface.data.shards import ShardSet, lr_column, manifest_digest
from lrface.data.sources import Pair, PairsFileError, read_lfw_pairs
from lrface.data.tensors import png_to_tensor
from lrface.eval.probes import Probes, ShardProbes
from lrface.eval.verification import Roc, auc, cosine_scores, kfold_accuracy, roc_curve, tar_at_far
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.protocols import protocol_name
from lrface.restoration import Restorer, flip_features
from lrface.sizes import HR_SIZE, both_lr


@dataclass
class LfwData:
    """Pairs, and the shard rows (by relative path) of every image they use."""

    pairs: list[Pair]
    table: pa.Table
    row_of: dict[str, int]
    manifest_sha256: str
    gallery_rows: np.ndarray = field(init=False)
    probe_rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.gallery_rows = np.array([self.row_of[p.a] for p in self.pairs])
        self.probe_rows = np.array([self.row_of[p.b] for p in self.pairs])

    @property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs])

    @property
    def folds(self) -> np.ndarray:
        return np.array([p.fold for p in self.pairs])


def load_lfw(shards: ShardSet, pairs_path: str | Path, folds: Sequence[int] | None = None) -> LfwData:
    """Open the LFW shards and pairs; a pair whose image is not in the shards is an error."""
    pairs = read_lfw_pairs(pairs_path)
    if folds is not None:
        pairs = [p for p in pairs if p.fold in set(folds)]
    table = shards.read_table(["source_path", "hr_png", *[lr_column(s) for s in shards.sizes]])
    row_of = {p: i for i, p in enumerate(table.column("source_path").to_pylist())}
    rejected = {r["source_path"]: r["reason"] for r in shards.manifest.get("rejected", [])}
    for p in pairs:
        for rel in (p.a, p.b):
            if rel not in row_of:
                why = f"rejected at alignment ({rejected[rel]})" if rel in rejected else "not in the shards"
                raise PairsFileError(f"{pairs_path}:{p.line}: image {rel} is {why} ({shards.manifest_path})")
    return LfwData(pairs, table, row_of, manifest_digest(shards.manifest_path))


def column_faces(table: pa.Table, column: str) -> Callable[[np.ndarray], torch.Tensor]:
    """Rows -> the faces ``table[column]`` holds (PNG), as a float batch."""
    col = table.column(column)
    return lambda rows: png_to_tensor([col[int(i)].as_py() for i in rows])


@torch.inference_mode()
def embed_rows(
    frnet: FrozenFRNet,
    table: pa.Table,
    rows: np.ndarray,
    column: str | Callable[[np.ndarray], torch.Tensor],
    restorer: Restorer | None = None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """256-d flip features of the faces of ``rows`` (``table[column]``, or what ``column(rows)``
    makes), restored to 112x96 by ``restorer`` (:func:`lrface.restoration.flip_features`)."""
    load = column_faces(table, column) if isinstance(column, str) else column
    out = np.empty((len(rows), 256), np.float32)
    for start in range(0, len(rows), batch_size):
        idx = rows[start : start + batch_size]
        out[start : start + len(idx)] = flip_features(frnet, load(idx), restorer).numpy()
        if progress:
            progress(len(idx))
    return out


@dataclass
class Result:
    """One cell of the table: a method at a probe resolution."""

    method: str
    size: str
    acc: float
    acc_std: float
    acc_meansub: float  # the same features scored by the MobileFaceNet authors' mean-subtracted recipe
    acc_meansub_std: float
    auc: float
    tar_at_far_1e3: float
    fold_accuracies: list[float]
    roc: Roc = field(repr=False)
    protocol: str = "lfw"  # the metric prefix: lfw (clean probes) or lfw_surv (camera chain)

    def as_dict(self) -> dict:
        return {"protocol": self.protocol, "method": self.method, "size": self.size, "acc": self.acc, "acc_std": self.acc_std,
                "acc_meansub": self.acc_meansub, "acc_meansub_std": self.acc_meansub_std,
                "auc": self.auc, "tar@far=1e-3": self.tar_at_far_1e3, "fold_accuracies": self.fold_accuracies}


def score(method: str, size: str, feat_a: np.ndarray, feat_b: np.ndarray, data: LfwData,
          protocol: str = "lfw") -> Result:
    """Plain-cosine 10-fold accuracy (primary, as ``lrface verify`` scores), the authors'
    mean-subtracted one beside it, and the ROC."""
    folds = kfold_accuracy(feat_a, feat_b, data.same, data.folds)
    meansub = kfold_accuracy(feat_a, feat_b, data.same, data.folds, subtract_mean=True)
    roc = roc_curve(cosine_scores(feat_a, feat_b), data.same)
    return Result(method, size, folds.mean, folds.std, meansub.mean, meansub.std, auc(roc), tar_at_far(roc, 1e-3),
                  [float(a) for a in folds.accuracies], roc, protocol)


class LfwEvaluator:
    """Runs methods x resolutions over the pairs, embedding each distinct image once."""

    def __init__(self, frnet: FrozenFRNet, data: LfwData, frnet_sha256: str, cache_dir: Path | None = None,
                 batch_size: int = 32, progress: bool = True, probes: Probes | None = None,
                 dataset: str = "lfw") -> None:
        self.frnet = frnet
        self.dataset = dataset
        self.probes: Probes = probes or ShardProbes()
        self.protocol = protocol_name(dataset, self.probes.protocol)
        self.data = data
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.frnet_sha256 = frnet_sha256
        self.progress = progress
        self._hr: np.ndarray | None = None

    def with_probes(self, probes: Probes) -> LfwEvaluator:
        """This evaluator (its pairs, FRNet and 112x96 features) on another protocol's probes."""
        other = copy.copy(self)
        other.probes, other.protocol = probes, protocol_name(self.dataset, probes.protocol)
        return other

    def _bar(self, total: int, desc: str):
        from lrface.progress import progress

        return progress(total=total, desc=desc, unit="img", disable=not self.progress)

    def _cached(self, key: str, rows: np.ndarray, compute: Callable[[], np.ndarray],
                code_parts: tuple[str, ...] = ()) -> np.ndarray:
        if self.cache_dir is None:
            return compute()
        # the shards, the shard rows embedded (the pairs and folds evaluated), FRNet (weights and
        # precision), the method's weights, the code that embeds and the code that made the probes
        code = code_digest("eval/lfw.py", "eval/methods.py", "losses.py", *RECOGNITION_MODELS, "data/tensors.py",
                           "data/images.py", *code_parts)
        rows_sha = hashlib.sha256(np.ascontiguousarray(rows, np.int64).tobytes()).hexdigest()
        digest = hashlib.sha256(
            f"{self.data.manifest_sha256}/{rows_sha}/{self.frnet_sha256}/{code}/{key}".encode()
        ).hexdigest()
        path = self.cache_dir / f"{key.replace('/', '_')}-{digest[:16]}.npy"
        if path.is_file():
            return np.load(path)
        feats = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path.with_suffix(".tmp.npy"), feats)
        path.with_suffix(".tmp.npy").replace(path)
        return feats

    def hr_features(self) -> np.ndarray:
        """112x96 features of every image any pair uses (indexed by shard row)."""
        if self._hr is None:
            rows = np.unique(np.r_[self.data.gallery_rows, self.data.probe_rows])

            def compute() -> np.ndarray:
                with self._bar(len(rows), "features 112x96") as bar:
                    f = embed_rows(self.frnet, self.data.table, rows, "hr_png", None, self.batch_size, bar.update)
                full = np.zeros((self.data.table.num_rows, 256), np.float32)
                full[rows] = f
                return full

            self._hr = self._cached("hr", rows, compute)
        return self._hr

    def _lr_rows(self, restorer: Restorer, size: str, rows: np.ndarray, key: str, cache: bool) -> np.ndarray:
        """Features of shard ``rows`` taken at ``size`` and restored by ``restorer`` (cached under ``key``)."""

        def compute() -> np.ndarray:
            load = lambda idx: self.probes.faces(self.data.table, idx, size)  # noqa: E731
            with self._bar(len(rows), f"{self.protocol} {restorer.name} {size}") as bar:
                return embed_rows(self.frnet, self.data.table, rows, load, restorer, self.batch_size, bar.update)

        return self._cached(key, rows, compute, self.probes.code) if cache else compute()

    def lr_features(self, restorer: Restorer, size: str, side: str = "probe", cache: bool = True) -> np.ndarray:
        """Features of each pair's ``side`` (``probe`` or ``gallery``) taken at ``size`` and
        restored by ``restorer`` (one row per pair). Each distinct image is embedded once: the
        gallery side embeds only the images that are no pair's probe and reuses the others."""
        fp = f"{getattr(restorer, 'fingerprint', restorer.name)}/{size}"
        if self.probes.protocol != "clean":  # the chain's parameters and libraries
            fp = f"{self.probes.fingerprint}/{fp}"
        rows = np.unique(self.data.probe_rows)
        feats = self._lr_rows(restorer, size, rows, fp, cache)
        if side == "gallery":
            extra = np.setdiff1d(np.unique(self.data.gallery_rows), rows)
            rows = np.r_[rows, extra]
            feats = np.r_[feats, self._lr_rows(restorer, size, extra, f"{fp}/gallery-only", cache)]
            order = np.argsort(rows)
            rows, feats = rows[order], feats[order]
        per_pair = self.data.probe_rows if side == "probe" else self.data.gallery_rows
        return feats[np.searchsorted(rows, per_pair)]

    def evaluate_hr(self) -> Result:
        hr = self.hr_features()
        return score("hr", HR_SIZE, hr[self.data.gallery_rows], hr[self.data.probe_rows], self.data,
                     protocol_name(self.dataset, "clean"))

    def evaluate(self, restorer: Restorer, size: str, cache: bool = True) -> Result:
        """Probe at ``size``, restored; gallery at 112x96 (the paper's protocol)."""
        gallery = self.hr_features()[self.data.gallery_rows]
        return score(restorer.name, size, gallery, self.lr_features(restorer, size, "probe", cache), self.data,
                     self.protocol)

    def evaluate_both_lr(self, restorer: Restorer, size: str, cache: bool = True) -> Result:
        """Both faces of each pair at ``size``, both restored by ``restorer``."""
        return score(restorer.name, both_lr(size), self.lr_features(restorer, size, "gallery", cache),
                     self.lr_features(restorer, size, "probe", cache), self.data, self.protocol)
