"""Training input order: a fresh seeded global shuffle every epoch, across shards (real Parquet
shards of real faces, a real local Ray)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from lrface.config import load_params
from lrface.data.datasets import open_shards


def _epochs(ds, n: int, batch: int) -> list[list[list[str]]]:
    """``n`` executions of ``ds`` (as a training worker's epochs), each a list of batches of sample ids."""
    out = []
    for _ in range(n):
        out.append([list(b["sample_id"]) for b in ds.iter_batches(batch_size=batch, batch_format="numpy")])
    return out


def _identities(shards) -> dict[str, str]:
    t = shards.read_table(["sample_id", "identity"], verify=False)
    return dict(zip(t.column("sample_id").to_pylist(), t.column("identity").to_pylist(), strict=True))


def test_epochs_visit_every_row_in_a_fresh_seeded_global_order(tiny, tmp_path):
    import ray.data

    from lrface.data.shard_stage import run_shards
    from lrface.ray_env import init_ray

    # the tiny set's aligned faces, re-sharded 30 rows per shard in a work dir of our own
    work = tmp_path / "work"
    shutil.copytree(Path(load_params(tiny).raw_path("work_dir")) / "train" / "aligned", work / "train" / "aligned")
    params = load_params(tiny, {"paths.work_dir": str(work), "data.rows_per_shard": 30})
    run_shards(params, "train")
    init_ray("local", num_cpus=2)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # block completion order must not decide row order
    shards = open_shards(params, "train")
    assert len(shards.shards) >= 2, "the test needs rows spread over several shards"
    ident = _identities(shards)
    train_ids = [i for i, s in zip(*shards.read_table(["sample_id", "split"], verify=False).to_pydict().values(),
                                   strict=True) if s == "train"]

    def run(seed: int | None) -> list[list[list[str]]]:
        ds = shards.ray_dataset(columns=["sample_id"], verify=False, split="train", shuffle_seed=seed)
        return _epochs(ds, 2, batch=8)

    seeded, again, other, unshuffled = run(0), run(0), run(1), run(None)
    flat = [[s for b in epoch for s in b] for epoch in seeded]
    for epoch in flat:  # every epoch is a permutation of the training rows
        assert sorted(epoch) == sorted(train_ids)
    assert flat[0] != flat[1], "two epochs came in the same order"
    assert seeded == again, "the same seed gave a different sequence of epoch orders"
    assert seeded != other
    # Shards are written in identity order, so an unshuffled batch is a run of neighbouring rows
    # (a few identities); a shuffled batch draws rows from across all shards.
    assert [[s for b in e for s in b] for e in unshuffled][0] == train_ids  # the writer's order
    pos = {s: i for i, s in enumerate(train_ids)}

    def span(epochs) -> float:  # mean distance, in writer order, between a batch's first and last rows
        return float(np.mean([max(pos[s] for s in b) - min(pos[s] for s in b) for e in epochs for b in e]))

    def ids_per_batch(epochs) -> float:
        return float(np.mean([len({ident[s] for s in b}) for e in epochs for b in e]))

    assert span(unshuffled) <= 8
    assert span(seeded) >= len(train_ids) / 2, span(seeded)
    assert ids_per_batch(seeded) >= ids_per_batch(unshuffled)
