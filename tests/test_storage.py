"""Storage by URI against a real S3-API server (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest

from lrface import storage
from lrface.storage import StorageError, Workspace
from tests.cluster import s3_keys, s3_server
from tests.servers import free_port


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3"), ("work",)) as env:
        yield env


@pytest.fixture
def s3_env(s3, monkeypatch, tmp_path):
    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LRFACE_CACHE_DIR", str(tmp_path / "mirror"))
    return s3


def test_workspace_push_pull_roundtrip(s3_env, tmp_path):
    ws = Workspace.of("s3://work/run1")
    assert ws.remote and ws.local.is_relative_to(tmp_path / "mirror")
    out = ws.local / "lfw" / "shards"
    out.mkdir(parents=True)
    (out / "part-00000.parquet").write_bytes(b"PAR1" * 100)
    (out / "manifest.json").write_text('{"shards": 1}')
    (out / "half.parquet.tmp").write_bytes(b"not finished")
    assert not ws.exists("lfw/shards/manifest.json")
    assert ws.push("lfw/shards", last=("manifest.json",)) == "s3://work/run1/lfw/shards"
    assert sorted(s3_keys(s3_env, "work", "run1/")) == ["run1/lfw/shards/manifest.json",
                                                      "run1/lfw/shards/part-00000.parquet"]
    assert ws.exists("lfw/shards/manifest.json")
    # Another machine (another mirror) pulls the same bytes.
    other = Workspace("s3://work/run1", tmp_path / "other")
    got = other.pull("lfw/shards")
    assert (got / "part-00000.parquet").read_bytes() == b"PAR1" * 100
    assert (got / "manifest.json").read_text() == '{"shards": 1}'
    assert other.pull("lfw/shards", complete="manifest.json") == got  # mirrored already: no download
    # An interrupted push: the parts are there, the completion file is not.
    storage.write_bytes("s3://work/run1/half/part-00000.parquet", b"PAR1")
    with pytest.raises(FileNotFoundError, match="s3://work/run1/half is incomplete"):
        other.pull("half", complete="manifest.json")
    ws.remove("lfw/shards/manifest.json")
    assert not ws.exists("lfw/shards/manifest.json")
    with pytest.raises(FileNotFoundError, match="s3://work/run1/models"):
        other.pull("models")
    assert other.pull("models", missing_ok=True) == tmp_path / "other" / "models"
    # A cache push leaves existing objects alone and adds new ones.
    cache = ws.local / "cache"
    cache.mkdir()
    (cache / "a.npy").write_bytes(b"a")
    ws.push("cache", skip_existing=True)
    (cache / "a.npy").write_bytes(b"changed locally")
    (cache / "b.npy").write_bytes(b"b")
    ws.push("cache", skip_existing=True)
    assert storage.read_bytes("s3://work/run1/cache/a.npy") == b"a"
    assert storage.read_bytes("s3://work/run1/cache/b.npy") == b"b"


def test_local_workspace_is_the_folder_itself(tmp_path):
    ws = Workspace.of(str(tmp_path / "data"))
    assert not ws.remote and ws.local == tmp_path / "data"
    assert ws.push("x") == str(tmp_path / "data" / "x")  # nothing to upload
    storage.write_bytes(str(tmp_path / "data" / "f.bin"), b"1")
    assert ws.exists("f.bin") and storage.read_bytes(str(tmp_path / "data" / "f.bin")) == b"1"


def test_missing_bucket_and_dead_endpoint_fail_fast_naming_the_uri(s3_env, monkeypatch):
    with pytest.raises(StorageError, match=r"s3://no-such-bucket/x: bucket 'no-such-bucket' does not exist"):
        storage.check("s3://no-such-bucket/x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    t0 = time.time()
    with pytest.raises(StorageError, match=r"s3://work/x: storage not usable \(endpoint http://127\.0\.0\.1"):
        storage.check("s3://work/x")
    assert time.time() - t0 < 60
    with pytest.raises(StorageError, match="unsupported storage scheme"):
        storage.filesystem("gs://bucket/x")


def test_wrong_credentials_are_named(tmp_path, monkeypatch):
    """moto checks signatures once IAM auth is on (after its first N unauthenticated actions)."""
    import boto3

    with s3_server(tmp_path, ("secure",), INITIAL_NO_AUTH_ACTION_COUNT="4") as env:
        iam = boto3.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="lrface")
        iam.put_user_policy(UserName="lrface", PolicyName="s3", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
        key = iam.create_access_key(UserName="lrface")["AccessKey"]
        monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        storage.check("s3://secure/work")  # the real key works
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        with pytest.raises(StorageError, match=r"s3://secure/work: storage not usable"):
            storage.check("s3://secure/work")


def test_shards_in_s3_are_read_by_ray_data_from_the_bucket(s3_env, tmp_path):
    """ShardSet.ray_dataset reads the bucket (what any node sees), not this machine's mirror."""
    import numpy as np

    from lrface.data.shards import ShardSet, ShardWriter, shard_schema, write_manifest
    from lrface.ray_env import init_ray

    ws = Workspace.of("s3://work/ray")
    out = ws.local / "d" / "shards"
    writer = ShardWriter(out, shard_schema(["7x6"]), rows_per_shard=3)
    for i in range(5):
        writer.write({"sample_id": f"s{i}", "identity": f"id{i % 2}", "source_path": "x", "split": "train",
                      "hr_png": b"h", "lr_7x6_png": b"l", "landmarks": None, "det_score": None, "n_faces": None,
                      "landmark_source": None})
    write_manifest(out, {"shards": [vars(s) for s in writer.close()], "params": {"degrade": {"sizes": ["7x6"]}}})
    ws.push("d/shards", last=("manifest.json",))
    for p in out.glob("part-*"):
        p.write_bytes(b"corrupt local mirror")  # proves the rows come from the bucket
    shards = ShardSet(out, remote=ws.uri_of("d/shards"))
    init_ray("local")
    rows = shards.ray_dataset(columns=["sample_id"], verify=False, split="train").take_all()
    assert sorted(r["sample_id"] for r in rows) == [f"s{i}" for i in range(5)]
    assert np.all([r.keys() == {"sample_id"} for r in rows])
