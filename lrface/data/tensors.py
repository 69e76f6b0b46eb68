"""From shard rows to torch tensors: RGB float ``(N, 3, H, W)`` in ``[0, 1]``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch

from lrface.data.images import decode_png
from lrface.data.shards import ShardSet


def faces_to_tensor(faces: Sequence[np.ndarray]) -> torch.Tensor:
    """Same-sized uint8 RGB ``(H, W, 3)`` faces -> one float batch ``(N, 3, H, W)`` in ``[0, 1]``."""
    return torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float().div_(255.0)


def png_to_tensor(blobs: Sequence[bytes]) -> torch.Tensor:
    """Decode same-sized PNGs into one float batch in ``[0, 1]``."""
    return faces_to_tensor([decode_png(b) for b in blobs])


def iter_face_batches(
    shards: ShardSet,
    image_columns: Sequence[str],
    batch_size: int,
    split: str | None = None,
    extra_columns: Sequence[str] = ("sample_id", "identity"),
    verify: bool = True,
) -> Iterator[dict[str, Any]]:
    """Stream shards as batches: image columns become tensors, the others Python lists."""
    columns = list(dict.fromkeys([*image_columns, *extra_columns, "split"]))
    for table in shards.iter_tables(columns, verify=verify):
        if split is not None:
            table = table.filter(pc.equal(table.column("split"), split))
        for start in range(0, table.num_rows, batch_size):
            chunk = table.slice(start, batch_size)
            batch: dict[str, Any] = {c: chunk.column(c).to_pylist() for c in extra_columns}
            for c in image_columns:
                batch[c] = png_to_tensor(chunk.column(c).to_pylist())
            yield batch
