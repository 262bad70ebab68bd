"""One root URL for every table the platform writes: ``file:///abs/folder`` or ``s3://bucket/prefix``.

Writes are atomic at the final key: on a local disk the bytes go to a hidden temporary file in
the same folder and are renamed into place (``os.replace`` is atomic on POSIX); on S3 an object
only becomes visible when its PUT (or, for large objects, its multipart upload) completes, so
the serialized table is uploaded whole and never appears half-written.  A reader therefore never sees a half-written table.

Transient S3 failures (5xx, ``SlowDown``/503 throttling, timeouts, dropped connections) are
retried per request by botocore's ``standard`` retry mode: exponential backoff with full
jitter (``random() * 2**attempt`` seconds, capped at 20 s) for up to ``max_attempts`` tries.
Retrying per request, not per ``write_bytes``, covers every call (each part of a multipart
upload, each server-side copy, each listing) and never re-sends more than the one request
that failed.  When the attempts are spent the error reaches the caller and nothing is at the
final key: a PUT that never completed leaves no object, and an aborted multipart upload none.

:meth:`ObjectStore.create_bytes` is a create-if-absent write (``O_EXCL``-like: a hard link of
a complete temporary file locally, a conditional ``PUT`` with ``If-None-Match: *`` on S3); the
release's publish marker and its lock are built on it (:mod:`sf_platform.storage.publish`).

Credentials for S3 come from the usual AWS environment variables / profiles (boto's chain);
they are never stored on this object's ``repr`` or in any metadata.
"""

from __future__ import annotations

import io
import os
import posixpath
import uuid
from dataclasses import dataclass
from functools import lru_cache

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_COMPRESSION = "zstd"
# Attempts per S3 request, first try included.  Ten tries of standard-mode backoff wait up to
# ~1+2+4+8+16+20*4 s in the worst case: long enough to ride out an S3 SlowDown burst or a
# MinIO node restarting, short enough that a dead endpoint fails the step within minutes.
DEFAULT_MAX_ATTEMPTS = 10


@lru_cache(maxsize=16)
def _s3fs(endpoint_url: str | None, region: str | None, max_attempts: int = DEFAULT_MAX_ATTEMPTS):
    import s3fs

    client_kwargs = {}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    # Region goes through the environment, not client_kwargs: passing region_name to s3fs makes
    # bucket creation send a LocationConstraint that MinIO/moto reject.
    if region and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = region
    retries = {"max_attempts": int(max_attempts), "mode": "standard"}
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False,
                             config_kwargs={"retries": retries})


def filesystem_for(url: str, endpoint_url: str | None = None, region: str | None = None,
                   max_attempts: int = DEFAULT_MAX_ATTEMPTS):
    """(fsspec filesystem, path within it) for a ``file://``, ``s3://`` or plain local path."""
    if url.startswith("s3://"):
        return _s3fs(endpoint_url, region, max_attempts), url[len("s3://"):]
    url = url.removeprefix("file://")
    return fsspec.filesystem("file"), os.path.abspath(url)


def join_uri(root: str, *parts: str) -> str:
    """Join a root URL or local path with relative parts using '/' (no normalisation of '..')."""
    root = root.rstrip("/")
    rel = "/".join(p.strip("/") for p in parts if p)
    return f"{root}/{rel}" if rel else root


@dataclass(frozen=True)
class ObjectStore:
    """Keys are '/'-separated paths relative to ``root`` (``assets/images/o365/00000.parquet``)."""

    root: str
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __repr__(self) -> str:  # never leak anything but the root and endpoint
        return f"ObjectStore(root={self.root!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def fs(self):
        return filesystem_for(self.root, self.endpoint_url, self.region, self.max_attempts)[0]

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def _path(self, key: str) -> str:
        base = filesystem_for(self.root, self.endpoint_url, self.region, self.max_attempts)[1]
        return posixpath.join(base, key) if key else base

    def uri(self, key: str) -> str:
        """The full URL of ``key`` (what goes into tables and Dagster metadata)."""
        return join_uri(self.root, key)

    # -- bytes -----------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically place ``data`` at ``key``; returns the key's URL."""
        path = self._path(key)
        if self.is_s3:
            self.fs.pipe_file(path, data)
        else:
            _place_local(path, data, os.replace)
        return self.uri(key)

    def create_bytes(self, key: str, data: bytes) -> str:
        """Place ``data`` at ``key`` only if nothing is there yet, atomically and whole;
        raises :class:`FileExistsError` (naming the key) when something is.

        On S3 a retried conditional PUT whose first attempt did land answers 412 too, so the
        caller that must know whether *it* won compares the content it finds (the publish
        step and the lock both write a token of their own into what they create)."""
        path = self._path(key)
        try:
            if self.is_s3:
                self.fs.pipe_file(path, data, mode="create")
            else:
                _place_local(path, data, os.link)  # link(2) fails with EEXIST: create-if-absent
        except FileExistsError:
            raise FileExistsError(f"{self.uri(key)} already exists") from None
        return self.uri(key)

    def copy(self, src: str, dst: str) -> None:
        """Server-side copy on S3 (no bytes through this process); atomic local copy otherwise."""
        if self.is_s3:
            self.fs.copy(self._path(src), self._path(dst))
        else:
            with open(self._path(src), "rb") as f:
                _place_local(self._path(dst), f.read(), os.replace)

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode("utf-8"))

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm(self._path(key), recursive=True)

    def list(self, prefix: str, suffix: str = "") -> list[str]:
        """Keys under ``prefix`` (recursively) ending in ``suffix``, sorted; hidden temp files skipped."""
        base = self._path(prefix)
        fs = self.fs
        if not fs.exists(base):
            return []
        root = self._path("")
        keys = []
        for p in fs.find(base):
            name = posixpath.basename(p)
            if name.startswith(".") or not p.endswith(suffix):
                continue
            keys.append(posixpath.relpath(p, root))
        return sorted(keys)

    # -- tables ----------------------------------------------------------------------------
    def write_table(self, key: str, table: pa.Table) -> str:
        """Serialize ``table`` as Parquet (zstd) and place it atomically at ``key``."""
        buf = io.BytesIO()
        pq.write_table(table, buf, compression=PARQUET_COMPRESSION)
        return self.write_bytes(key, buf.getvalue())

    def read_table(self, key: str, columns: list[str] | None = None) -> pa.Table:
        with self.fs.open(self._path(key), "rb") as f:
            return pq.read_table(f, columns=columns)

    def num_rows(self, key: str) -> int:
        """Rows of a Parquet key, from its footer only (no column is read)."""
        with self.fs.open(self._path(key), "rb") as f:
            return pq.read_metadata(f).num_rows

    def read_tables(self, keys: list[str], schema: pa.Schema | None = None) -> pa.Table:
        """Concatenate several Parquet keys (``schema`` gives the result when ``keys`` is empty)."""
        tables = [self.read_table(k) for k in keys]
        if not tables:
            if schema is None:
                raise ValueError("no tables to read and no schema given")
            return schema.empty_table()
        return pa.concat_tables(tables, promote_options="default")


def _place_local(path: str, data: bytes, place) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, fsync it, then ``place(tmp,
    path)`` (``os.replace``: atomic overwrite; ``os.link``: atomic create-if-absent)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        place(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def open_uri(uri: str, endpoint_url: str | None = None, region: str | None = None):
    """Open any image/depth/annotation URL (local path, file://, s3://) for binary reading."""
    fs, path = filesystem_for(uri, endpoint_url, region)
    return fs.open(path, "rb")


def read_uri(uri: str, endpoint_url: str | None = None, region: str | None = None) -> bytes:
    fs, path = filesystem_for(uri, endpoint_url, region)
    return fs.cat_file(path)


def store_for(cfg) -> ObjectStore:
    """The one way to build the platform's store from a :class:`sf_platform.config.Config`
    (root URL, S3 endpoint and region; credentials stay in the AWS environment)."""
    return ObjectStore(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region,
                       max_attempts=cfg.s3.max_attempts)
