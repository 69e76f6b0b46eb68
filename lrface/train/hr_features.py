"""The HR side of the identity loss, computed once per training image (per flip and variant).

FRNet is frozen and the HR faces are fixed, so ``f(HR)`` and ``f(hflip(HR))`` are constants, and so
are those of each fixed geometric variant of a face (:mod:`lrface.data.augment`): the driver
computes them once into a Parquet file keyed by the shard manifest, the FRNet sha256, the variants
and the code that computes them, and every worker looks them up by ``sample_id`` instead of running
FRNet on the HR batch each step.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lrface.code_digest import RECOGNITION_MODELS, code_digest
from lrface.data.augment import VariantJitter, face_variants
from lrface.data.shards import ShardSet, manifest_digest
from lrface.data.tensors import iter_face_batches
from lrface.models.mobilefacenet import FrozenFRNet


def _columns(k: int) -> tuple[str, str]:
    """The feature columns of variant ``k``: plain and flipped."""
    return f"feat_v{k}", f"feat_flip_v{k}"


def features_path(cache_dir: Path, shards: ShardSet, frnet_sha256: str, variants: int = 1,
                  jitter: VariantJitter | None = None) -> Path:
    """Where the features of ``shards`` by this FRNet (``frnet_sha256``: weights and precision) are
    cached: the key also covers the variants and the code that computes them (FRNet's modules, this
    one, the variants, the batch decoding), so an edit there computes them afresh."""
    code = code_digest("train/hr_features.py", *RECOGNITION_MODELS, "data/tensors.py", "data/shards.py",
                       "data/images.py", "data/augment.py")
    faces = f"{variants}/{jitter if variants > 1 else ''}"
    key = hashlib.sha256(f"{manifest_digest(shards.manifest_path)}/{frnet_sha256}/{faces}/{code}".encode())
    return cache_dir / f"hr_features-{key.hexdigest()[:16]}.parquet"


@torch.inference_mode()
def compute_hr_features(shards: ShardSet, frnet: FrozenFRNet, out: Path, split: str = "train",
                        batch_size: int = 64, progress: bool = True, variants: int = 1,
                        jitter: VariantJitter | None = None) -> Path:
    """Write ``f(HR)`` and ``f(hflip(HR))`` of every ``split`` row and each of its ``variants``
    (variant 0: the face itself) to ``out`` (reused if present)."""
    if out.is_file():
        return out
    from lrface.progress import progress as bar

    ids: list[str] = []
    feats: dict[str, list[np.ndarray]] = {c: [] for k in range(variants) for c in _columns(k)}
    total = int(shards.manifest.get("splits", {}).get(split, 0)) or None
    with bar(total=total, desc="HR features", unit="img", disable=not progress) as b:
        for batch in iter_face_batches(shards, ["hr_png"], batch_size, split=split, extra_columns=("sample_id",),
                                       verify=False):
            for k in range(variants):
                hr = face_variants(batch["hr_png"], batch["sample_id"], k, jitter)
                plain, flipped = _columns(k)
                feats[plain].append(frnet(hr).numpy())
                feats[flipped].append(frnet(hr.flip(-1)).numpy())
            ids.extend(batch["sample_id"])
            b.update(len(batch["sample_id"]))
    if not ids:
        raise RuntimeError(f"no {split!r} rows in {shards.manifest_path}")
    dim = feats[_columns(0)[0]][0].shape[1]
    table = pa.table({"sample_id": pa.array(ids, pa.string())} | {
        c: pa.FixedSizeListArray.from_arrays(np.concatenate(parts).ravel(), dim) for c, parts in feats.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # concurrent trainings
    pq.write_table(table, tmp)
    tmp.replace(out)
    return out


class HrFeatureLookup:
    """``sample_id`` (+ flip flag and variant) -> the precomputed HR feature rows, as one tensor.

    Small (about 7 MB per variant for 5,000 faces) and picklable: the driver builds it once and ships it to every Ray Train
    worker through the object store, so no worker reads the driver's feature file.
    """

    def __init__(self, sample_ids: list[str], feats: torch.Tensor) -> None:
        self.index = {s: i for i, s in enumerate(sample_ids)}
        self.feats = feats  # (variants, 2, N, dim): per variant plain, flipped

    @property
    def variants(self) -> int:
        return self.feats.shape[0]

    @classmethod
    def from_file(cls, path: str | Path) -> HrFeatureLookup:
        table = pq.read_table(path)
        variants = sum(1 for name in table.column_names if name.startswith("feat_v"))
        dim = table.schema.field(_columns(0)[0]).type.list_size
        feats = [[np.asarray(table.column(c).combine_chunks().flatten()).reshape(-1, dim) for c in _columns(k)]
                 for k in range(variants)]
        return cls(table.column("sample_id").to_pylist(), torch.from_numpy(np.stack(feats)))

    def __call__(self, sample_ids, flipped: torch.Tensor, device: torch.device,
                 variant: torch.Tensor | None = None) -> torch.Tensor:
        try:
            rows = torch.tensor([self.index[str(s)] for s in sample_ids])
        except KeyError as e:
            raise KeyError(f"sample {e} has no precomputed HR feature (stale feature file?)") from e
        k = torch.zeros_like(rows) if variant is None else variant.long()
        if int(k.max()) >= self.variants:
            raise ValueError(f"variant {int(k.max())} asked of a feature file with {self.variants}")
        return self.feats[k, flipped.long(), rows].to(device)
