"""Storage by URI: a local folder or ``s3://bucket/prefix``, through pyarrow's filesystems.

S3 settings come from the standard AWS variables: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
(an S3-compatible server), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``. Timeouts are short so a wrong
endpoint or missing bucket fails in seconds with a :class:`StorageError` naming the URI.

A remote ``paths.work_dir`` is a :class:`Workspace`: the driver reads and writes a local mirror
(``LRFACE_CACHE_DIR``, default ``~/.cache/lrface/mirror``) and every stage pulls what it reads and
pushes what it wrote, completion files (manifest, summary) last, so a half-pushed output never
looks complete. Ray workers never see the mirror: they read shards and write checkpoints in the
bucket itself (:meth:`Workspace.uri`, :func:`filesystem`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs


class StorageError(OSError):
    """A storage URI that cannot be used (no bucket, bad credentials, no answer); names the URI."""


def is_remote(uri: str | Path) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def s3_options() -> dict:
    """``S3FileSystem`` keyword arguments from the standard AWS environment variables.

    Credentials are passed explicitly so that a pickled filesystem (Ray tasks, Ray Train's
    storage) carries them to nodes whose environment does not have them.
    """
    env = os.environ
    opts: dict = {"connect_timeout": 5.0, "request_timeout": 30.0,
                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:  # else the AWS SDK's own resolution (profile, instance metadata)
        opts["region"] = region
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        u = urlparse(endpoint)
        opts["endpoint_override"] = u.netloc or u.path
        opts["scheme"] = u.scheme or "https"
        opts["force_virtual_addressing"] = False
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        opts["access_key"] = env["AWS_ACCESS_KEY_ID"]
        opts["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            opts["session_token"] = env["AWS_SESSION_TOKEN"]
    return opts


def filesystem(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a local path or an ``s3://`` URI."""
    text = str(uri)
    if not is_remote(text):
        return pafs.LocalFileSystem(), str(Path(text.removeprefix("file://")).resolve())
    u = urlparse(text)
    if u.scheme != "s3":
        raise StorageError(f"{text}: unsupported storage scheme {u.scheme!r} (use a local path or s3://)")
    return _s3(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))), \
        f"{u.netloc}{u.path}".rstrip("/")


@functools.lru_cache(maxsize=8)
def _s3(aws_env: tuple[tuple[str, str], ...]) -> pafs.S3FileSystem:
    """One filesystem per AWS environment (keyed by it, so a changed endpoint gets a new one)."""
    return pafs.S3FileSystem(**s3_options())


def check(uri: str) -> None:
    """Fail fast, naming ``uri``, when its bucket is missing, unreachable or refuses us."""
    if not is_remote(uri):
        return
    fs, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as e:
        raise StorageError(f"{uri}: storage not usable ({_endpoint()}): {e}") from e
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{uri}: bucket {bucket!r} does not exist ({_endpoint()})")


def _endpoint() -> str:
    return f"endpoint {os.environ.get('AWS_ENDPOINT_URL_S3') or os.environ.get('AWS_ENDPOINT_URL') or 'AWS default'}"


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        # a random-access file reads its whole size in one request; a stream's read() of unknown
        # length goes in many small ranged GETs (40 MB: 5.4 s against 0.1 s on moto's server)
        with fs.open_input_file(path) as f:
            return f.read()
    except OSError as e:
        raise StorageError(f"cannot read {uri}: {e}") from e


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole object (local files through a temporary name, so never half-written)."""
    fs, path = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(p)
        return
    try:
        with fs.open_output_stream(path) as f:  # an S3 object appears only when complete
            f.write(data)
    except OSError as e:
        raise StorageError(f"cannot write {uri}: {e}") from e


def join(uri: str, *parts: str) -> str:
    return "/".join([str(uri).rstrip("/"), *[p.strip("/") for p in parts if p]])


def mirror_root() -> Path:
    return Path(os.environ.get("LRFACE_CACHE_DIR") or Path.home() / ".cache" / "lrface" / "mirror")


@dataclass(frozen=True)
class Workspace:
    """``paths.work_dir``: where stage outputs live (``uri``) and where this process reads and
    writes them (``local``: the folder itself, or a mirror of a remote one)."""

    uri: str
    local: Path

    @classmethod
    def of(cls, uri: str) -> Workspace:
        if not is_remote(uri):
            return cls(str(uri), Path(str(uri).removeprefix("file://")))
        key = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:12]
        name = urlparse(uri).netloc
        return cls(uri.rstrip("/"), mirror_root() / f"{name}-{key}")

    @property
    def remote(self) -> bool:
        return is_remote(self.uri)

    def uri_of(self, rel: str = "") -> str:
        """Where ``rel`` lives for any node: an ``s3://`` URI, or the local path."""
        return join(self.uri, rel) if self.remote else str(self.local / rel) if rel else str(self.local)

    def exists(self, rel: str) -> bool:
        if not self.remote:
            return (self.local / rel).exists()
        fs, path = filesystem(self.uri_of(rel))
        try:
            return fs.get_file_info(path).type != pafs.FileType.NotFound
        except OSError as e:
            raise StorageError(f"{self.uri_of(rel)}: {e}") from e

    def pull(self, rel: str, missing_ok: bool = False, complete: str | None = None) -> Path:
        """Bring ``rel`` (a folder or file) into the local mirror; its local path.

        Files already mirrored (same size and modification time) are not downloaded again; each
        download lands under a temporary name first, so concurrent readers never see a torn file.
        ``complete``: the folder's completion file; without it remotely the output is unfinished
        (an interrupted push) and the pull refuses it."""
        local = self.local / rel
        if not self.remote:
            return local
        check(self.uri)
        fs, path = filesystem(self.uri_of(rel))
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            if missing_ok:
                return local
            raise FileNotFoundError(f"{self.uri_of(rel)} not found (run the stage that writes it)")
        if info.type == pafs.FileType.File:
            self._download(info, local)
            return local
        files = self._remote_files(rel)
        if complete and complete not in files:
            raise FileNotFoundError(f"{self.uri_of(rel)} is incomplete (no {complete}): rerun the stage that writes it")
        for name in sorted(files, key=lambda n: n == complete):  # the completion file last
            self._download(files[name], local / name)
        return local

    @staticmethod
    def _download(info: pafs.FileInfo, local: Path) -> None:
        mtime = info.mtime.timestamp() if info.mtime else None
        if local.is_file() and local.stat().st_size == info.size and mtime is not None \
                and abs(local.stat().st_mtime - mtime) < 1e-3:
            return
        data = read_bytes(f"s3://{info.path}")  # StorageError naming the object if it fails
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f"{local.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(data)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        tmp.replace(local)

    def push(self, rel: str, last: tuple[str, ...] = (), skip_existing: bool = False) -> str:
        """Upload the local ``rel`` to the remote work dir; the files named in ``last`` (relative
        to ``rel``) go after everything else. ``skip_existing``: leave objects already there alone
        (content-addressed caches). Returns the remote URI."""
        if not self.remote:
            return str(self.local / rel)
        check(self.uri)
        local = self.local / rel
        if not local.exists():
            return self.uri_of(rel)
        if local.is_file():
            write_bytes(self.uri_of(rel), local.read_bytes())
            return self.uri_of(rel)
        for name in last:  # a stale completion file must not vouch for a half-pushed folder
            self.remove(f"{rel}/{name}")
        names = [p.relative_to(local).as_posix() for p in local.rglob("*")
                 if p.is_file() and not p.name.endswith(".tmp")]
        if skip_existing:
            names = [n for n in names if n not in self._remote_files(rel)]
        for name in sorted(names, key=lambda n: (n in last, n)):  # completion files last
            write_bytes(self.uri_of(f"{rel}/{name}"), (local / name).read_bytes())
        return self.uri_of(rel)

    def _remote_files(self, rel: str) -> dict[str, pafs.FileInfo]:
        """The files under the remote ``rel``, by path relative to it (empty if there is none)."""
        fs, path = filesystem(self.uri_of(rel))
        return {i.path.removeprefix(path + "/"): i for i in fs.get_file_info(
            pafs.FileSelector(path, recursive=True, allow_not_found=True)) if i.type == pafs.FileType.File}

    def remove(self, rel: str) -> None:
        """Delete ``rel`` remotely (a completion file first, so nothing stale looks complete)."""
        if not self.remote:
            return
        fs, path = filesystem(self.uri_of(rel))
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            fs.delete_file(path)
        elif info.type == pafs.FileType.Directory:
            fs.delete_dir(path)
