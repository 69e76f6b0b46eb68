"""The HR side of the identity loss, computed once per training image (and per flip).

FRNet is frozen and the HR faces are fixed, so ``f(HR)`` and ``f(hflip(HR))`` are constants: the
driver computes them once into a Parquet file keyed by the shard manifest, the FRNet sha256 and the
code that computes them, and every worker looks them up by ``sample_id`` instead of running FRNet
on the HR batch each step.
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
from lrface.data.shards import ShardSet, manifest_digest
from lrface.data.tensors import iter_face_batches
from lrface.models.mobilefacenet import FrozenFRNet

COLUMNS = ("sample_id", "feat", "feat_flip")


def features_path(cache_dir: Path, shards: ShardSet, frnet_sha256: str) -> Path:
    """Where the features of ``shards`` by this FRNet (``frnet_sha256``: weights and precision) are
    cached: the key also covers the code that computes them (FRNet's modules, this one, the
    batch decoding), so an edit there computes them afresh."""
    code = code_digest("train/hr_features.py", *RECOGNITION_MODELS, "data/tensors.py", "data/shards.py",
                       "data/images.py")
    key = hashlib.sha256(f"{manifest_digest(shards.manifest_path)}/{frnet_sha256}/{code}".encode()).hexdigest()
    return cache_dir / f"hr_features-{key[:16]}.parquet"


@torch.inference_mode()
def compute_hr_features(shards: ShardSet, frnet: FrozenFRNet, out: Path, split: str = "train",
                        batch_size: int = 64, progress: bool = True) -> Path:
    """Write ``f(HR)`` and ``f(hflip(HR))`` of every ``split`` row to ``out`` (reused if present)."""
    if out.is_file():
        return out
    from lrface.progress import progress as bar

    ids: list[str] = []
    plain: list[np.ndarray] = []
    flipped: list[np.ndarray] = []
    total = int(shards.manifest.get("splits", {}).get(split, 0)) or None
    with bar(total=total, desc="HR features", unit="img", disable=not progress) as b:
        for batch in iter_face_batches(shards, ["hr_png"], batch_size, split=split, extra_columns=("sample_id",),
                                       verify=False):
            hr = batch["hr_png"]
            plain.append(frnet(hr).numpy())
            flipped.append(frnet(hr.flip(-1)).numpy())
            ids.extend(batch["sample_id"])
            b.update(len(hr))
    if not ids:
        raise RuntimeError(f"no {split!r} rows in {shards.manifest_path}")
    dim = plain[0].shape[1]
    table = pa.table({
        "sample_id": pa.array(ids, pa.string()),
        "feat": pa.FixedSizeListArray.from_arrays(np.concatenate(plain).ravel(), dim),
        "feat_flip": pa.FixedSizeListArray.from_arrays(np.concatenate(flipped).ravel(), dim),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # concurrent trainings
    pq.write_table(table, tmp)
    tmp.replace(out)
    return out


class HrFeatureLookup:
    """``sample_id`` (+ flip flag) -> the precomputed HR feature rows, as one tensor.

    Small (a few MB) and picklable: the driver builds it once and ships it to every Ray Train
    worker through the object store, so no worker reads the driver's feature file.
    """

    def __init__(self, sample_ids: list[str], feats: torch.Tensor) -> None:
        self.index = {s: i for i, s in enumerate(sample_ids)}
        self.feats = feats  # (2, N, dim): plain, flipped

    @classmethod
    def from_file(cls, path: str | Path) -> HrFeatureLookup:
        table = pq.read_table(path, columns=list(COLUMNS))
        dim = table.schema.field("feat").type.list_size
        feats = [np.asarray(table.column(c).combine_chunks().flatten()).reshape(-1, dim)
                 for c in ("feat", "feat_flip")]
        return cls(table.column("sample_id").to_pylist(), torch.from_numpy(np.stack(feats)))

    def __call__(self, sample_ids, flipped: torch.Tensor, device: torch.device) -> torch.Tensor:
        try:
            rows = torch.tensor([self.index[str(s)] for s in sample_ids])
        except KeyError as e:
            raise KeyError(f"sample {e} has no precomputed HR feature (stale feature file?)") from e
        return self.feats[flipped.long(), rows].to(device)
