"""The ``align`` stage: detect + warp every input of a dataset on Ray Data actors.

It writes ``<work>/<dataset>/aligned/``: one row per *input* (aligned or rejected, with the
reason) plus ``summary.json``. The ``shards`` stage (:mod:`lrface.data.shard_stage`) reads it, so a
degradation change reruns only that stage.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from lrface import storage
from lrface.allocator import keep_freed_memory
from lrface.config import Params
from lrface.data.align import AlignConfig, Aligner, read_landmarks_file
from lrface.data.datasets import DatasetSpec, data_path, dataset_dir, dataset_records
from lrface.data.images import BadImage, encode_png, read_bytes
from lrface.data.shards import ShardWriter
from lrface.data.sources import ImageRecord

ALIGNED_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("identity", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # "aligned" | "rejected"
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("hr_png", pa.binary()),
        pa.field("landmarks", pa.list_(pa.float32())),
        pa.field("det_score", pa.float32()),
        pa.field("n_faces", pa.int16()),
        pa.field("landmark_source", pa.string()),
        pa.field("file_sha256", pa.string()),
    ]
)


class _AlignWorker:
    """A Ray Data actor: one Aligner (one MTCNN, one thread) per actor."""

    def __init__(self, config: AlignConfig, reference: dict[str, np.ndarray],
                 fallback: dict[str, np.ndarray]) -> None:
        keep_freed_memory()  # the detector's pyramid maps are freed and reallocated every batch
        self.aligner = Aligner(config, reference, fallback=fallback)
        self.aligner.detector  # noqa: B018 -- built now: a detector that cannot be built fails the stage,
        # instead of every image being rejected as "detector error"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        items = list(zip(batch["path"], batch["rel"], strict=True))
        if not batch["shipped"].all():  # a local run: the actor reads the files itself
            return self._rows(batch, self.aligner.align_many(items))
        data = [BadImage(p, str(r), str(d)) if r else bytes(b)
                for p, b, r, d in zip(batch["path"], batch["data"], batch["read_error"], batch["read_detail"],
                                      strict=True)]
        return self._rows(batch, self.aligner.align_many(items, data))

    @staticmethod
    def _rows(batch: dict[str, np.ndarray], results: list) -> dict[str, Any]:
        return {
            "idx": batch["idx"],
            "ok": np.array([r.ok for r in results]),
            "reason": np.array([r.reason for r in results], dtype=object),
            "detail": np.array([r.detail for r in results], dtype=object),
            "hr_png": np.array([encode_png(r.face) if r.ok else b"" for r in results], dtype=object),
            "landmarks": np.stack([
                r.landmarks.reshape(10).astype(np.float32) if r.landmarks is not None
                else np.full(10, np.nan, np.float32) for r in results
            ]),
            "det_score": np.array([r.score for r in results], dtype=np.float32),
            "n_faces": np.array([r.n_faces for r in results], dtype=np.int16),
            "landmark_source": np.array([r.landmark_source for r in results], dtype=object),
        }


def _read_inputs(records: list[ImageRecord], keep: bool) -> tuple[list[bytes | BadImage | None],
                                                                   list[str | None], list[str | None]]:
    """Each input's sha256 (None if unreadable), for repeats the first sample id, and with
    ``keep`` its bytes (or why they cannot be read): on a cluster the driver reads every file once
    and the bytes travel to the alignment actors through Ray's object store, so actors on other
    nodes need no data mount."""
    blobs: list[bytes | BadImage | None] = []
    digests: list[str | None] = []
    first: dict[str, str] = {}
    dup_of: list[str | None] = []
    for r in records:
        try:
            blob: bytes | BadImage = read_bytes(r.path)
        except BadImage as e:
            blob = e
        d = hashlib.sha256(blob).hexdigest() if isinstance(blob, bytes) else None
        blobs.append(blob if keep else None)
        digests.append(d)
        if d is not None and d in first:
            dup_of.append(first[d])
        else:
            dup_of.append(None)
            if d is not None:
                first[d] = r.sample_id
    return blobs, digests, dup_of


def run_align(params: Params, dataset: str, progress: bool = True) -> dict[str, Any]:
    """Align every input of ``dataset`` on Ray; write ``aligned/`` parts and ``summary.json``."""
    import ray.data

    from lrface.progress import progress as progress_bar
    from lrface.ray_env import check_reachable, init_ray

    address = params.get_dotted("ray.address") or "local"
    storage.check(params.workspace().uri)  # fail fast: before reading or aligning anything
    if address != "local":
        check_reachable(address)
    spec = DatasetSpec.from_params(params, dataset)
    config = AlignConfig.from_dict(params.section("align"))
    workers, batch_size = config.workers, config.batch_size
    records = dataset_records(params, spec)
    if not records:
        raise ValueError(f"dataset {dataset!r} has no input images")
    ship = address != "local"  # actors on other nodes get the bytes; a local one reads the files
    blobs, digests, dup_of = _read_inputs(records, keep=ship)
    reference = read_landmarks_file(data_path(params, spec.landmarks_file)) if spec.landmarks_file else {}
    fallback = (read_landmarks_file(data_path(params, spec.fallback_landmarks))
                if spec.fallback_landmarks else {})

    todo = [i for i, d in enumerate(dup_of) if not (spec.drop_duplicates and d is not None)]
    t0 = time.time()
    init_ray(address)
    ray.data.DataContext.get_current().enable_progress_bars = False  # one tqdm bar below instead
    ds = ray.data.from_items(
        [{"idx": i, "path": records[i].path, "rel": records[i].rel_path, **_payload(blobs[i], ship)} for i in todo],
        override_num_blocks=max(1, min(len(todo) // batch_size, 200)),
    )
    ds = ds.map_batches(
        _AlignWorker,
        fn_constructor_kwargs={"config": config, "reference": reference, "fallback": fallback},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        batch_format="numpy",
    )
    results: dict[int, dict[str, Any]] = {}
    bar = progress_bar(total=len(todo), desc=f"align {dataset}", unit="img", disable=not progress)
    for batch in ds.iter_batches(batch_size=256, batch_format="numpy"):
        for j, idx in enumerate(batch["idx"]):
            results[int(idx)] = {k: batch[k][j] for k in batch}
        bar.update(len(batch["idx"]))
    bar.close()
    seconds = time.time() - t0

    out = dataset_dir(params, dataset) / "aligned"
    writer = ShardWriter(out, ALIGNED_SCHEMA, int(params.section("data")["rows_per_shard"]))
    reasons: Counter[str] = Counter()
    for i, r in enumerate(records):
        res = results.get(i)
        if res is None:  # dropped before alignment as a duplicate
            row = _rejected_row(r, "duplicate", f"same bytes as {dup_of[i]}", digests[i])
        elif not res["ok"]:
            row = _rejected_row(r, str(res["reason"]), str(res["detail"]), digests[i])
        else:
            row = {
                **_base_row(r, digests[i]), "status": "aligned", "reason": None,
                "detail": f"duplicate of {dup_of[i]}" if dup_of[i] else None,
                "hr_png": bytes(res["hr_png"]), "landmarks": [float(v) for v in res["landmarks"]],
                "det_score": float(res["det_score"]), "n_faces": int(res["n_faces"]),
                "landmark_source": str(res["landmark_source"]),
            }
        if row["status"] == "rejected":
            reasons[row["reason"]] += 1
        writer.write(row)
    shards = writer.close()
    summary = {
        "dataset": dataset,
        "counts": {
            "in": len(records),
            "aligned": len(records) - sum(reasons.values()),
            "rejected": sum(reasons.values()),
            "rejected_by_reason": dict(sorted(reasons.items())),
            "duplicates_kept": sum(1 for i, d in enumerate(dup_of) if d and i in results),
            "landmark_source": dict(sorted(Counter(
                str(r["landmark_source"]) for r in results.values() if r["ok"]).items())),
        },
        "detection_rate": _detection_rate(results),
        "faces_per_second": round(len(todo) / seconds, 2),
        "workers": workers,
        "align": asdict(config),
        "parts": [asdict(s) for s in shards],
    }
    if spec.reference_landmarks:
        summary["landmarks_vs_reference"] = _landmark_agreement(
            records, results, read_landmarks_file(data_path(params, spec.reference_landmarks))
        )
    assert summary["counts"]["in"] == summary["counts"]["aligned"] + summary["counts"]["rejected"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    params.workspace().push(f"{dataset}/aligned", last=("summary.json",))  # no-op for a local work dir
    return summary


def _payload(blob: bytes | BadImage | None, ship: bool) -> dict[str, Any]:
    """The actor's input: the bytes (or why they are unreadable) when shipped, else only the path."""
    if not ship:
        return {"data": b"", "read_error": "", "read_detail": "", "shipped": False}
    if isinstance(blob, BadImage):
        return {"data": b"", "read_error": blob.reason, "read_detail": blob.detail, "shipped": True}
    return {"data": blob, "read_error": "", "read_detail": "", "shipped": True}


def _detection_rate(results: dict[int, dict[str, Any]]) -> float | None:
    """Share of decodable images that needed detection in which MTCNN found a face."""
    sources = Counter(str(r["landmark_source"]) for r in results.values() if r["ok"])
    no_face = sum(1 for r in results.values() if not r["ok"] and r["reason"] == "no face")
    tried = sources["mtcnn"] + sources["fallback"] + no_face
    return round(sources["mtcnn"] / tried, 6) if tried else None


def _base_row(r: ImageRecord, digest: str | None) -> dict[str, Any]:
    return {"sample_id": r.sample_id, "identity": r.identity, "source_path": r.rel_path, "file_sha256": digest}


def _rejected_row(r: ImageRecord, reason: str, detail: str, digest: str | None) -> dict[str, Any]:
    return {**_base_row(r, digest), "status": "rejected", "reason": reason, "detail": detail or None,
            "hr_png": None, "landmarks": None, "det_score": None, "n_faces": None, "landmark_source": None}


def _landmark_agreement(records, results, reference) -> dict[str, Any]:
    dists = []
    for i, r in enumerate(records):
        res = results.get(i)
        if res is not None and res["ok"] and res["landmark_source"] == "mtcnn" and r.rel_path in reference:
            ours = np.asarray(res["landmarks"], np.float64).reshape(5, 2)
            dists.append(float(np.linalg.norm(ours - reference[r.rel_path], axis=1).mean()))
    if not dists:
        return {"n": 0}
    d = np.array(dists)
    return {"n": len(d), "mean_px": round(float(d.mean()), 3), "median_px": round(float(np.median(d)), 3),
            "p95_px": round(float(np.percentile(d, 95)), 3), "max_px": round(float(d.max()), 3)}
