"""1:N search: a gallery folder's face embeddings, cached in Parquet, and top-k identification.

Every image under the gallery folder is one enrolled face; its identity is its sub-folder's name
(``gallery/<identity>/<file>``) or, for files directly in the folder, the file's stem. The cache
keeps one row per file (path, size, mtime, verifier fingerprint, embedding or the reason it
failed); only new or changed files are embedded again, and removed ones drop out.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lrface.inference import FaceEmbedding, FaceVerifier, InferenceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CACHE_SCHEMA = pa.schema([
    pa.field("path", pa.string()), pa.field("size", pa.int64()), pa.field("mtime_ns", pa.int64()),
    pa.field("fingerprint", pa.string()), pa.field("identity", pa.string()), pa.field("error", pa.string()),
    pa.field("route", pa.string()), pa.field("grid", pa.string()),
    pa.field("embedding", pa.list_(pa.float32())),  # null for files that failed
])


def gallery_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"gallery folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def identity_of(root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


@dataclass
class Gallery:
    root: Path
    paths: list[str]
    identities: list[str]
    embeddings: np.ndarray  # (N, 256), L2-normalised
    grids: list[str]  # the grid each face was taken at (112x96, 28x24, 14x12, 7x6)
    failed: dict[str, str]  # path -> why it is not enrolled
    reused: int
    embedded: int

    def search(self, query: np.ndarray, top_k: int = 5) -> list[list[tuple[int, float]]]:
        """Indices and cosine similarities of the ``top_k`` gallery faces for each query row."""
        q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        sims = q @ self.embeddings.T
        k = min(top_k, sims.shape[1])
        idx = np.argsort(-sims, axis=1)[:, :k]
        return [[(int(j), float(sims[i, j])) for j in row] for i, row in enumerate(idx)]


def default_cache_path(work_dir: Path, root: Path) -> Path:
    """Where a gallery folder's embeddings are cached unless told: one file per folder, under the
    work dir."""
    name = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(work_dir) / "cache" / "gallery" / f"{name}.parquet"


def build_gallery(verifier: FaceVerifier, root: str | Path, cache: str | Path, batch: int | None = None,
                  progress: bool = False) -> Gallery:
    """Embed the gallery, reusing cached rows whose file and verifier are unchanged; ``batch``
    images at a time (default: ``inference.batch_size``)."""
    from lrface.progress import progress as bar

    batch = verifier.config.batch_size if batch is None else batch
    root = Path(root).resolve()
    cache = Path(cache)
    files = gallery_files(root)
    fp = verifier.fingerprint
    old: dict[str, dict[str, Any]] = {}
    if cache.is_file():
        try:
            old = {r["path"]: r for r in pq.read_table(cache).to_pylist()}
        except (pa.ArrowInvalid, OSError):
            old = {}  # unreadable cache: rebuilt below
    rows: list[dict[str, Any]] = []
    todo: list[tuple[Path, os.stat_result]] = []
    for p in files:
        try:
            st = p.stat()
        except OSError as e:  # gone or unreadable since it was listed: recorded, not fatal
            rows.append(_row(root, p, None, fp, error=f"{p}: unreadable ({e.strerror or e})"))
            continue
        r = old.get(str(p))
        if r and r["size"] == st.st_size and r["mtime_ns"] == st.st_mtime_ns and r["fingerprint"] == fp:
            rows.append(r)
        else:
            todo.append((p, st))
    reused = len(rows)
    with bar(total=len(todo), desc="gallery", unit="img", disable=not progress) as b:
        for s in range(0, len(todo), batch):
            chunk = todo[s : s + batch]
            rows += _embed_chunk(verifier, root, chunk, fp)
            b.update(len(chunk))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=CACHE_SCHEMA), tmp)
    tmp.replace(cache)
    ok = [r for r in rows if r["error"] is None]
    emb = np.array([r["embedding"] for r in ok], np.float32).reshape(-1, 256)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return Gallery(root, [r["path"] for r in ok], [r["identity"] for r in ok], emb, [r["grid"] for r in ok],
                   {r["path"]: r["error"] for r in rows if r["error"] is not None}, reused, len(todo))


def _row(root: Path, p: Path, st: os.stat_result | None, fp: str, emb: FaceEmbedding | None = None,
         error: str | None = None) -> dict[str, Any]:
    """One cache row: a file's embedding, or why it has none."""
    return {"path": str(p), "size": st.st_size if st else -1, "mtime_ns": st.st_mtime_ns if st else -1,
            "fingerprint": fp, "identity": identity_of(root, p), "error": error,
            "route": emb.route if emb else None, "grid": emb.size if emb else None,
            "embedding": emb.embedding.tolist() if emb else None}


def _embed_chunk(verifier: FaceVerifier, root: Path, chunk, fp: str) -> list[dict[str, Any]]:
    """Embed a batch; a bad file is recorded with its reason and the others still go through."""
    try:
        embs = verifier.embed([p for p, _ in chunk])
        return [_row(root, p, st, fp, e) for (p, st), e in zip(chunk, embs, strict=True)]
    except InferenceError:
        pass  # one bad file in the batch: embed one by one to record which
    out = []
    for p, st in chunk:
        try:
            out.append(_row(root, p, st, fp, verifier.embed([p])[0]))
        except InferenceError as err:
            out.append(_row(root, p, st, fp, error=str(err)))
    return out
