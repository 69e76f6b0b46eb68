"""Parquet shards of aligned faces and their JSON manifest.

Shard schema (one row per aligned face)::

    sample_id        string      "<dataset>/<identity>/<file>", unique
    identity         string      "<dataset>/<identity>"
    source_path      string      path relative to the manifest's ``source_root``
    split            string      "train" | "val" | "test"
    hr_png           binary      aligned 112x96 RGB face, PNG
    lr_<HxW>_png     binary      one column per LR size, e.g. lr_14x12_png, PNG
    landmarks        list<float32>  10 values: x1 y1 ... x5 y5 in the source image
    det_score        float32     detector confidence (NaN when landmarks came from a file)
    n_faces          int16       faces the detector found above the score threshold
    landmark_source  string      "mtcnn" | "file"

``manifest.json`` beside the shards: dataset name, params, counts (``in``, ``aligned``,
``rejected`` and ``rejected_by_reason``; ``in == aligned + rejected``), every rejected input with
its reason, and each shard's file name, row count, size and sha256 (checked at read time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lrface.hashing import sha256_file

MANIFEST = "manifest.json"


class ShardError(ValueError):
    """A shard that is missing, corrupt or does not match its manifest (names the file)."""


def lr_column(size: str) -> str:
    return f"lr_{size}_png"


def shard_schema(sizes: Iterable[str]) -> pa.Schema:
    fields = [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("identity", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("hr_png", pa.binary(), nullable=False),
        *[pa.field(lr_column(s), pa.binary(), nullable=False) for s in sizes],
        pa.field("landmarks", pa.list_(pa.float32())),
        pa.field("det_score", pa.float32()),
        pa.field("n_faces", pa.int16()),
        pa.field("landmark_source", pa.string()),
    ]
    return pa.schema(fields)


@dataclass
class ShardInfo:
    file: str
    rows: int
    bytes: int
    sha256: str


class ShardWriter:
    """Writes rows (dicts) to ``<dir>/part-00000.parquet``, ... of at most ``rows_per_shard``.

    Files are written under a temporary name and renamed when complete, so a crash never
    leaves a half-written shard that looks finished.
    """

    def __init__(self, out_dir: str | Path, schema: pa.Schema, rows_per_shard: int, prefix: str = "part"):
        if rows_per_shard < 1:
            raise ValueError("rows_per_shard must be >= 1")
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob(f"{prefix}-*.parquet"):
            old.unlink()
        self.schema = schema
        self.rows_per_shard = rows_per_shard
        self.prefix = prefix
        self.shards: list[ShardInfo] = []
        self._buffer: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.rows_per_shard:
            self._flush()

    def close(self) -> list[ShardInfo]:
        if self._buffer:
            self._flush()
        return self.shards

    def _flush(self) -> None:
        name = f"{self.prefix}-{len(self.shards):05d}.parquet"
        path = self.dir / name
        tmp = path.with_suffix(".parquet.tmp")
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        pq.write_table(table, tmp, compression="none")  # PNG bytes do not compress further
        tmp.replace(path)
        self.shards.append(ShardInfo(name, table.num_rows, path.stat().st_size, sha256_file(path)))
        self._buffer = []


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    path = Path(out_dir) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        return {k: getattr(o, k) for k in o.__dataclass_fields__}
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def manifest_digest(path: str | Path) -> str:
    """sha256 of a manifest file (it pins every shard's sha256, so it identifies the dataset)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ShardSet:
    """The shards of one dataset, opened through its manifest."""

    def __init__(self, manifest_path: str | Path, remote: str | None = None) -> None:
        """``remote``: the shard folder's URI (``s3://...``) that Ray Data reads on any node, when
        this process reads a local mirror of it."""
        self.remote = remote
        self.manifest_path = Path(manifest_path)
        if self.manifest_path.is_dir():
            self.manifest_path = self.manifest_path / MANIFEST
        if not self.manifest_path.is_file():
            raise FileNotFoundError(f"shard manifest not found: {self.manifest_path}")
        try:
            self.manifest = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise ShardError(f"{self.manifest_path}: corrupt manifest: {e}") from e
        self.dir = self.manifest_path.parent
        self.shards = [ShardInfo(**s) for s in self.manifest["shards"]]

    @property
    def sizes(self) -> list[str]:
        return list(self.manifest["params"]["degrade"]["sizes"])

    @property
    def paths(self) -> list[Path]:
        return [self.dir / s.file for s in self.shards]

    def __len__(self) -> int:
        return sum(s.rows for s in self.shards)

    def verify(self) -> None:
        """Check every shard exists and matches its manifest sha256; raise naming the shard."""
        for s in self.shards:
            self._verify_one(s)

    def _verify_one(self, s: ShardInfo) -> Path:
        path = self.dir / s.file
        if not path.is_file():
            raise ShardError(f"shard missing: {path} (listed in {self.manifest_path})")
        if path.stat().st_size != s.bytes or sha256_file(path) != s.sha256:
            raise ShardError(f"shard corrupt: {path} does not match the sha256 in {self.manifest_path}")
        return path

    def read_table(self, columns: list[str] | None = None, verify: bool = True) -> pa.Table:
        """All shards as one Arrow table."""
        return pa.concat_tables(list(self.iter_tables(columns, verify)))

    def iter_tables(self, columns: list[str] | None = None, verify: bool = True) -> Iterator[pa.Table]:
        for s in self.shards:
            path = self._verify_one(s) if verify else self.dir / s.file
            try:
                table = pq.read_table(path, columns=columns)
            except (pa.ArrowException, OSError) as e:
                raise ShardError(f"cannot read shard {path}: {e}") from e
            if table.num_rows != s.rows:
                raise ShardError(f"shard {path} has {table.num_rows} rows, manifest says {s.rows}")
            yield table

    def ray_dataset(self, columns: list[str] | None = None, verify: bool = True, split: str | None = None,
                    num_cpus: float | None = None, ship: bool = False, shuffle_seed: int | None = None):
        """The shards as a Ray Dataset (``ray.data.read_parquet``), checksums verified first.

        ``split`` filters rows in the Parquet scan (no extra Ray task); ``num_cpus`` sets the
        read tasks' CPU request (training passes a small one so reads never wait behind the
        CPUs its workers hold). Where the shards are: the bucket (``remote``) for any node; local
        files otherwise, which only this node can read, so ``ship`` (a cluster without shared
        storage) reads them here and hands the rows to Ray's object store instead.

        ``shuffle_seed``: a global shuffle of all rows (across shards), in a new order on every
        execution of the dataset (every training epoch), the sequence of orders fixed by the seed:
        the dataset preserves block order (``execution_options.preserve_order``), so the order
        blocks finish in plays no part; a consumer that splits it must keep that option (training
        does: :func:`lrface.train.job.ordered_ingest`). The shards are then read here, once (see
        :func:`_shuffled`).
        """
        import ray.data
        from ray.data.expressions import col

        from lrface.storage import filesystem

        if verify:
            self.verify()
        kwargs: dict[str, Any] = {} if num_cpus is None else {"num_cpus": num_cpus}
        read_cols = None if columns is None else list(dict.fromkeys([*columns, *(["split"] if split else [])]))
        if ship and not self.remote:
            import pyarrow.compute as pc

            table = self.read_table(read_cols, verify=False)
            if split is not None:
                table = table.filter(pc.equal(table.column("split"), split))
            if columns is not None:
                table = table.select(columns)
            return _shuffled(ray.data.from_arrow(table), shuffle_seed)
        if self.remote:  # every node reads the bucket, not this machine's mirror
            fs, base = filesystem(self.remote)
            paths, kwargs["filesystem"] = [f"{base}/{s.file}" for s in self.shards], fs
        else:
            paths = [str(p) for p in self.paths]
        ds = ray.data.read_parquet(paths, columns=read_cols, **kwargs)
        if split is not None:
            ds = ds.filter(expr=col("split") == split)  # pushed into the Parquet scan
            if columns is not None and "split" not in columns:
                ds = ds.select_columns(columns)
        return _shuffled(ds, shuffle_seed)


def _shuffled(ds, seed: int | None):
    """``ds`` globally shuffled, reseeded from ``seed`` and the execution index on each execution.

    The rows are read once, here (``materialize``), and each execution (epoch) only shuffles
    those blocks: re-reading the shards as well stalled every training worker for 9-13 s at each
    epoch boundary, against 0.2-0.3 s now (``bench/epoch_boundary.py``). The object store holds
    the read rows for the dataset's lifetime beside each epoch's shuffled copy: about twice the
    training set's bytes. Blocks keep their order through the read, the materialisation and the
    shuffle, so the seed alone fixes every epoch's order."""
    if seed is None:
        return ds
    from ray.data import RandomSeedConfig

    ds.context.execution_options.preserve_order = True  # this dataset's own copy of the DataContext
    return ds.materialize().random_shuffle(seed=RandomSeedConfig(seed=seed, reseed_after_execution=True))
