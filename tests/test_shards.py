import numpy as np
import pytest
import torch

from lrface.data.images import encode_png
from lrface.data.shards import (
    ShardError,
    ShardSet,
    ShardWriter,
    lr_column,
    shard_schema,
    write_manifest,
)
from lrface.data.tensors import iter_face_batches

SIZES = ["14x12", "7x6"]


def _row(i, split="train"):
    rng = np.random.default_rng(i)
    img = lambda h, w: encode_png(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))  # noqa: E731
    return {
        "sample_id": f"ds/id{i % 3}/{i}.jpg", "identity": f"ds/id{i % 3}", "source_path": f"id{i % 3}/{i}.jpg",
        "split": split, "hr_png": img(112, 96), lr_column("14x12"): img(14, 12), lr_column("7x6"): img(7, 6),
        "landmarks": [float(v) for v in range(10)], "det_score": 0.99, "n_faces": 1, "landmark_source": "mtcnn",
    }


def _write(tmp_path, n=25, per=10):
    w = ShardWriter(tmp_path, shard_schema(SIZES), rows_per_shard=per)
    for i in range(n):
        w.write(_row(i, "val" if i % 5 == 0 else "train"))
    shards = w.close()
    write_manifest(tmp_path, {"dataset": "ds", "params": {"degrade": {"sizes": SIZES}},
                              "shards": [s.__dict__ for s in shards]})
    return ShardSet(tmp_path)


def test_roundtrip_bounded_shards_and_tensors(tmp_path):
    ss = _write(tmp_path)
    assert [s.rows for s in ss.shards] == [10, 10, 5] and len(ss) == 25
    ss.verify()
    batches = list(iter_face_batches(ss, ["hr_png", lr_column("7x6")], batch_size=4))
    assert sum(len(b["sample_id"]) for b in batches) == 25
    b = batches[0]
    assert b["hr_png"].shape == (4, 3, 112, 96) and b[lr_column("7x6")].shape == (4, 3, 7, 6)
    assert b["hr_png"].dtype == torch.float32 and b["hr_png"].min() >= 0 and b["hr_png"].max() <= 1
    val = list(iter_face_batches(ss, ["hr_png"], batch_size=100, split="val"))
    assert sum(len(x["sample_id"]) for x in val) == 5


def test_corrupt_and_truncated_shards_are_named(tmp_path):
    ss = _write(tmp_path)
    path = ss.paths[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="part-00001.parquet"):
        ss.verify()
    with pytest.raises(ShardError, match="part-00001.parquet"):
        list(iter_face_batches(ss, ["hr_png"], 8))
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(ShardError, match="cannot read shard .*part-00001.parquet"):
        ss.read_table(verify=False)
    ss.paths[1].unlink()
    with pytest.raises(ShardError, match="shard missing: .*part-00001.parquet"):
        ss.verify()
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ShardError, match="corrupt manifest"):
        ShardSet(tmp_path)
