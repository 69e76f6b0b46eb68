"""The ``shards`` stage: degrade the aligned faces and write verified Parquet shards + manifest."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lrface import storage
from lrface.config import Params
from lrface.data.datasets import DatasetSpec, data_path, dataset_dir
from lrface.data.degrade import DegradeConfig, make_lr
from lrface.data.images import decode_png, encode_png
from lrface.data.shards import ShardWriter, lr_column, shard_schema, write_manifest
from lrface.data.splits import assign_split
from lrface.hashing import sha256_file


def run_shards(params: Params, dataset: str) -> dict[str, Any]:
    """Degrade the aligned faces of ``dataset`` and write shards + ``manifest.json``."""
    from lrface.progress import progress

    spec = DatasetSpec.from_params(params, dataset)
    dcfg = DegradeConfig.from_dict(params.section("degrade"))
    base = dataset_dir(params, dataset)
    ws = params.workspace()
    storage.check(ws.uri)
    if ws.remote:
        ws.pull(f"{dataset}/aligned", complete="summary.json")
    summary_path = base / "aligned" / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"run the align stage first: {summary_path} not found")
    summary = json.loads(summary_path.read_text())
    aligned = _read_aligned(base / "aligned", summary)
    seed = int(params.section("data").get("split_seed", 0))
    writer = ShardWriter(base / "shards", shard_schema(dcfg.sizes), int(params.section("data")["rows_per_shard"]))
    rejected, splits = [], Counter()
    for row in progress(aligned, desc=f"shards {dataset}", unit="face"):
        if row["status"] != "aligned":
            rejected.append({k: row[k] for k in ("sample_id", "source_path", "reason", "detail")})
            continue
        split = "test" if spec.role == "test" else assign_split(row["identity"], spec.val_fraction, seed)
        splits[split] += 1
        lr = make_lr(decode_png(row["hr_png"]), dcfg)
        writer.write({
            "sample_id": row["sample_id"], "identity": row["identity"], "source_path": row["source_path"],
            "split": split, "hr_png": row["hr_png"],
            **{lr_column(s): encode_png(img) for s, img in lr.items()},
            "landmarks": row["landmarks"], "det_score": row["det_score"], "n_faces": row["n_faces"],
            "landmark_source": row["landmark_source"],
        })
    shards = writer.close()
    counts = dict(summary["counts"])
    if counts["aligned"] != sum(splits.values()) or counts["rejected"] != len(rejected):
        raise RuntimeError(f"{base}: aligned/rejected counts changed between stages: {counts}")
    manifest = {
        "dataset": dataset,
        "role": spec.role,
        "source_root": str(data_path(params, spec.sources[0]["root"])) if spec.role == "test" else None,
        "counts": counts,
        "splits": dict(sorted(splits.items())),
        "identities": len({r["identity"] for r in aligned if r["status"] == "aligned"}),
        "params": {"dataset": asdict(spec), "align": summary["align"], "degrade": {"sizes": list(dcfg.sizes), "kernel": dcfg.kernel},
                   "split_seed": seed},
        "landmarks_vs_reference": summary.get("landmarks_vs_reference"),
        "shards": [asdict(s) for s in shards],
        "rejected": rejected,
    }
    write_manifest(base / "shards", manifest)
    ws.push(f"{dataset}/shards", last=("manifest.json",))  # no-op for a local work dir
    return manifest


def _read_aligned(folder: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the align stage, checked against its summary's part checksums."""
    import pyarrow.parquet as pq

    from lrface.data.shards import ShardError

    rows: list[dict[str, Any]] = []
    for part in summary["parts"]:
        path = folder / part["file"]
        if not path.is_file() or sha256_file(path) != part["sha256"]:
            raise ShardError(f"aligned part missing or corrupt: {path}")
        rows.extend(pq.read_table(path).to_pylist())
    return rows
