"""Which images go where: the test set (LFW pairs) and an identity-disjoint SR training set.

The rule "SR training shares no identity with the LFW test pairs" is enforced here, in code:
:func:`training_records` drops test identities and :func:`check_disjoint` raises if any remain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from lrface.data.sources import ImageRecord, identity_folders, pair_identities, read_lfw_pairs


class SplitError(ValueError):
    """Training and test data share identities."""


def bare_identity(identity: str) -> str:
    """'lfw/George_W_Bush' -> 'george_w_bush' (dataset prefix dropped, case folded)."""
    return identity.split("/", 1)[-1].casefold()


def check_disjoint(train: Iterable[ImageRecord], test_identities: Iterable[str]) -> None:
    """Raise :class:`SplitError` listing any training identity that is a test identity."""
    test = {bare_identity(i) for i in test_identities}
    clash = sorted({r.identity for r in train if bare_identity(r.identity) in test})
    if clash:
        raise SplitError(
            f"{len(clash)} training identities also occur in the test pairs, e.g. {clash[:5]}"
        )


def training_records(
    sources: list[tuple[str, Path]], test_pairs: Path | None, limit: int | None = None
) -> list[ImageRecord]:
    """Images of every ``(name, root)`` identity-folder source, minus the test identities.

    ``limit`` keeps a deterministic, source-mixed subset (by hash of the sample id).
    """
    test_ids = pair_identities(read_lfw_pairs(test_pairs)) if test_pairs else set()
    test_bare = {i.casefold() for i in test_ids}
    records = [
        r
        for name, root in sources
        for r in identity_folders(root, name)
        if bare_identity(r.identity) not in test_bare
    ]
    check_disjoint(records, test_ids)
    if limit is not None:
        records = sorted(records, key=lambda r: _unit(r.sample_id, 0))[:limit]
        records.sort(key=lambda r: r.sample_id)
    return records


def _unit(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def assign_split(identity: str, val_fraction: float, seed: int) -> str:
    """'val' for a stable ``val_fraction`` of identities (by hash), else 'train'."""
    return "val" if _unit(identity, seed) < val_fraction else "train"
