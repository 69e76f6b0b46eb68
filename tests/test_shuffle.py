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


def _resharded(tiny, tmp_path):
    """The tiny set's aligned faces, re-sharded 30 rows per shard in a work dir of our own, a local
    Ray whose driver keeps Ray Data's default (no preserved order), and the training rows' ids."""
    import ray.data

    from lrface.data.shard_stage import run_shards
    from lrface.ray_env import init_ray

    work = tmp_path / "work"
    shutil.copytree(Path(load_params(tiny).raw_path("work_dir")) / "train" / "aligned", work / "train" / "aligned")
    params = load_params(tiny, {"paths.work_dir": str(work), "data.rows_per_shard": 30})
    run_shards(params, "train")
    init_ray("local", num_cpus=2)
    ray.data.DataContext.get_current().execution_options.preserve_order = False  # the dataset sees to it
    shards = open_shards(params, "train")
    assert len(shards.shards) >= 2, "the test needs rows spread over several shards"
    train_ids = [i for i, s in zip(*shards.read_table(["sample_id", "split"], verify=False).to_pydict().values(),
                                   strict=True) if s == "train"]
    return shards, train_ids


def test_epochs_visit_every_row_in_a_fresh_seeded_global_order(tiny, tmp_path):
    shards, train_ids = _resharded(tiny, tmp_path)
    ident = _identities(shards)

    def run(seed: int | None) -> list[list[list[str]]]:
        ds = shards.ray_dataset(columns=["sample_id"], verify=False, split="train", shuffle_seed=seed)
        if seed is None:  # the writer's order, for reference (the shuffled one keeps its blocks' order itself)
            ds.context.execution_options.preserve_order = True
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


def test_training_workers_get_the_same_rows_in_the_same_order_whatever_their_timing(tiny, tmp_path):
    """Ray Train's split of the shuffled input across two workers, by the ``DataConfig`` of the
    TorchTrainer that training builds: which rows each worker sees, and in what order, follows
    from the seed alone, not from which worker asks first."""
    import threading
    import time

    import ray

    from lrface.train.config import train_config
    from lrface.train.job import build_trainer

    shards, train_ids = _resharded(tiny, tmp_path)
    node = ray.get_runtime_context().get_node_id()

    def run(slow_rank: int) -> list[list[list[str]]]:
        ds = shards.ray_dataset(columns=["sample_id"], verify=False, split="train", shuffle_seed=0)
        trainer = build_trainer(train_config(load_params(tiny)), "order-test", str(tmp_path / "store"), {}, ds)
        splits = trainer.data_config.configure({"train": ds}, world_size=2, worker_handles=None,
                                               worker_node_ids=[node, node])
        # Train replaces the dataset's execution options with the DataConfig's: they must keep block order
        assert all(s["train"].get_context().execution_options.preserve_order for s in splits)
        seen: list[list[list[str]]] = [[], []]
        errors: list[BaseException] = []

        def consume(rank: int) -> None:
            try:
                it = splits[rank]["train"]
                for _ in range(2):  # two epochs
                    rows: list[str] = []
                    for b in it.iter_batches(batch_size=4, batch_format="numpy"):
                        if rank == slow_rank:
                            time.sleep(0.02)
                        rows += list(b["sample_id"])
                    seen[rank].append(rows)
            except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread below
                errors.append(e)

        threads = [threading.Thread(target=consume, args=(r,)) for r in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "a worker's split hung"
        if errors:
            raise errors[0]
        return seen

    first, second = run(slow_rank=0), run(slow_rank=1)
    for epoch in range(2):
        both = first[0][epoch] + first[1][epoch]
        assert len(first[0][epoch]) == len(first[1][epoch])  # equal splits
        assert len(set(both)) == len(both) and set(both) <= set(train_ids)
        assert len(both) >= len(train_ids) - 1  # equal splits may drop one odd row
    assert first[0][0] != first[0][1], "a worker saw two epochs in the same order"
    assert first == second, "the workers' rows depended on which of them asked first"
