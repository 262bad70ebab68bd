"""Consolidated release files cut into size-capped parts, spooled on local disk.

A task's rows arrive shard by shard; its file (or its parts) can only be named once the last
shard is in, because a part's name says how many parts there are
(``<stem>-part-00000-of-00003.<ext>``, a single part is just ``<stem>.<ext>``).  So parts are
written to local temporary files as they fill, and named and uploaded at the end: memory
holds one shard and one part's buffer, never a whole task.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.storage.object_store import PARQUET_COMPRESSION


def part_name(stem: str, index: int, count: int, ext: str) -> str:
    """``grounding.jsonl``, or ``grounding-part-00001-of-00003.jsonl`` when there are parts."""
    if count == 1:
        return f"{stem}.{ext}"
    return f"{stem}-part-{index:05d}-of-{count:05d}.{ext}"


@dataclass
class Part:
    path: str  # local temporary file
    rows: int
    bytes: int


class _Spool:
    def __init__(self, workdir: str, suffix: str):
        self._dir, self._suffix = workdir, suffix
        self.parts: list[Part] = []

    def _new_path(self) -> str:
        fd, path = tempfile.mkstemp(dir=self._dir, suffix=self._suffix)
        os.close(fd)
        return path


class LineSpool(_Spool):
    """Lines (JSON records) cut into parts of at most ``max_bytes`` as finally written: a
    wrapper (LLaVA's JSON array) adds ``per_line`` bytes per line and ``per_file`` per part.
    A part holds at least one line, so a record larger than the cap is a part of its own."""

    def __init__(self, workdir: str, max_bytes: int, per_line: int = 0, per_file: int = 0):
        super().__init__(workdir, ".lines")
        self.max_bytes, self.per_line, self.per_file = max_bytes, per_line, per_file
        self._fh = None

    def add(self, line: bytes) -> None:
        cur = self.parts[-1] if self.parts else None
        size = (cur.bytes + cur.rows * self.per_line + self.per_file) if cur else 0
        if cur is None or (cur.rows and size + len(line) + self.per_line > self.max_bytes):
            if self._fh:
                self._fh.close()
            cur = Part(self._new_path(), 0, 0)
            self.parts.append(cur)
            self._fh = open(cur.path, "wb")  # noqa: SIM115 -- stays open across add() calls; finish() closes
        self._fh.write(line)
        cur.rows += 1
        cur.bytes += len(line)

    def finish(self) -> list[Part]:
        if self._fh:
            self._fh.close()
            self._fh = None
        return self.parts


class ParquetSpool(_Spool):
    """Tables appended to Parquet parts of at most ``max_rows`` rows; always at least one
    part (an empty split still has its file, so a card's ``data_files`` glob matches)."""

    def __init__(self, workdir: str, schema: pa.Schema, max_rows: int):
        super().__init__(workdir, ".parquet")
        self.schema, self.max_rows = schema, max_rows
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> Part:
        if self._writer:
            self._writer.close()
        part = Part(self._new_path(), 0, 0)
        self.parts.append(part)
        self._writer = pq.ParquetWriter(part.path, self.schema, compression=PARQUET_COMPRESSION)
        return part

    def add(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            cur = self.parts[-1] if self.parts and self.parts[-1].rows < self.max_rows else self._open()
            take = min(self.max_rows - cur.rows, table.num_rows - start)
            self._writer.write_table(table.slice(start, take))
            cur.rows += take
            start += take

    def finish(self) -> list[Part]:
        if not self.parts:
            self._open()
        if self._writer:
            self._writer.close()
            self._writer = None
        for p in self.parts:
            p.bytes = os.path.getsize(p.path)
        return self.parts
