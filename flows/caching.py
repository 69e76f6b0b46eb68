"""Cache keys for the flows' tasks: a hash of exactly what a step's result depends on.

A key covers the step, the params it reads, the content digest of its inputs (shard manifests,
the FRNet file, the raw image tree's listing) and a digest of the lrface source the step runs
(:func:`lrface.code_digest.code_digest`), so an edited loss misses the cached training. The flows call a task with
``refresh_cache`` when its output is missing, so a deleted output is always rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lrface.code_digest import code_digest
from lrface.config import Params


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def tree_listing_digest(root: Path) -> str:
    """Names, sizes and mtimes of every file under ``root`` (cheap; as DVC does for a directory)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    from lrface.hashing import sha256_file

    return sha256_file(path) if path.is_file() else "missing"


def output_digest(params: Params, rel: str) -> str:
    """Digest of a stage's completion file under the work dir (local, or in the bucket)."""
    from lrface.storage import read_bytes

    ws = params.workspace()
    if not ws.remote:
        return file_digest(ws.local / rel)
    return hashlib.sha256(read_bytes(ws.uri_of(rel))).hexdigest() if ws.exists(rel) else "missing"


def stage_key(step: str, params: Params, sections: list[str], inputs: list[str],
              code: tuple[str, ...] = ()) -> str:
    """The cache key of ``step``: its params, its inputs' digests and its code's digest."""
    chosen = {s: params.get_dotted(s) for s in sections}
    return f"lrface-{step}-{digest(step, chosen, inputs, code_digest(*code))[:32]}"
