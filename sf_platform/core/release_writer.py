"""Writing a release's content: every file through :meth:`ReleaseWriter.put`, one task at a time.

Per task the rows of every shard are turned into release rows (portable image reference,
licence, content hash), split into train / validation by image, and appended to:

- ``data/<task>/<split>[-part-NNNNN-of-NNNNN].parquet`` (size-capped by rows), and
- ``exports/<format>/<task>[-part-NNNNN-of-NNNNN].{jsonl,json}`` (the train split, capped by
  bytes), plus InternVL's ``exports/internvl/<task>_meta.json`` naming each part with its
  ``length``.

:meth:`ReleaseWriter.put` is the one place bytes reach the store, so the destination prefix
(the final release folder, or a staging prefix published later) is a single attribute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import splits
from sf_platform.core.exports import EXPORTERS, EXTENSIONS, internvl_meta, json_array, record_line
from sf_platform.core.release_parts import LineSpool, ParquetSpool, Part, part_name
from sf_platform.core.release_rows import RELEASE_ROWS
from sf_platform.storage.object_store import ObjectStore

# InternVL's meta names the image folder its annotation paths are relative to; in a release
# that folder is the user's: ``images/`` beside where training runs, holding one sub-folder per
# source (``sf-platform export --images-root`` writes the real one).
DEFAULT_IMAGES_ROOT = "images/"


@dataclass
class ExportOptions:
    formats: tuple[str, ...]
    part_max_bytes: int
    multi_turn: bool = False
    max_turns: int = 6
    box_format: str = "qwen3"
    images_root: str = ""  # prefix of every record's ``image``
    meta_root: str = DEFAULT_IMAGES_ROOT  # InternVL meta ``root``
    meta_annotation_base: str = ""  # prefix of InternVL meta ``annotation`` paths


@dataclass
class ReleaseWriter:
    """Puts release files under ``prefix`` of ``store`` and records each in ``files``."""

    store: ObjectStore
    prefix: str
    files: list[dict] = field(default_factory=list)

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def put(self, rel: str, data: bytes, kind: str, rows: int | None, **extra) -> dict:
        self.store.write_bytes(self.key(rel), data)
        entry = {"path": rel, "kind": kind, "rows": rows, "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), **extra}
        self.files.append(entry)
        return entry

    def put_parts(self, folder: str, stem: str, ext: str, parts: list[Part], kind: str,
                  wrap: Callable[[bytes], bytes] | None = None, **extra) -> list[dict]:
        out = []
        for i, part in enumerate(parts):
            with open(part.path, "rb") as fh:
                data = fh.read()
            rel = f"{folder}/{part_name(stem, i, len(parts), ext)}"
            out.append(self.put(rel, wrap(data) if wrap else data, kind, part.rows, **extra))
        return out


def _llava_array(data: bytes) -> bytes:
    return json_array(data.splitlines(keepends=True))


def line_spool(workdir: str, fmt: str, max_bytes: int) -> LineSpool:
    """A spool for ``fmt``'s records whose cap holds for the file as written (LLaVA's JSON
    array adds a comma per record and its brackets)."""
    if EXTENSIONS[fmt] == "json":
        return LineSpool(workdir, max_bytes, per_line=1, per_file=len(json_array([b"x\n"])) - 2)
    return LineSpool(workdir, max_bytes)


def export_shard(spools: dict[str, LineSpool], rows: pa.Table, opts: ExportOptions) -> None:
    for fmt, spool in spools.items():
        for rec in EXPORTERS[fmt](rows, multi_turn=opts.multi_turn, max_turns=opts.max_turns,
                                  box_format=opts.box_format, images_root=opts.images_root):
            spool.add(record_line(rec))


def put_exports(writer: ReleaseWriter, task: str, spools: dict[str, LineSpool], opts: ExportOptions) -> dict:
    """Upload a task's export parts and InternVL's meta JSON; returns that meta ({} if none)."""
    meta: dict = {}
    for fmt, spool in spools.items():
        parts = spool.finish()
        if not parts:
            continue
        wrap = _llava_array if EXTENSIONS[fmt] == "json" else None
        entries = writer.put_parts(f"exports/{fmt}", task, EXTENSIONS[fmt], parts, "export", wrap,
                                   format=fmt, task=task)
        if fmt == "internvl":
            meta = internvl_meta(
                [(f"{task}" if len(entries) == 1 else f"{task}_part{i:05d}",
                  f"{opts.meta_annotation_base}{e['path']}", e["rows"]) for i, e in enumerate(entries)],
                opts.meta_root)
            writer.put(f"exports/internvl/{task}_meta.json",
                       (json.dumps(meta, indent=2) + "\n").encode(), "export_meta", None, format=fmt, task=task)
    return meta


def put_meta_index(writer: ReleaseWriter, meta: dict) -> None:
    """``exports/internvl/meta.json``: every task's InternVL datasets, for one ``--meta_path``."""
    if meta:
        writer.put("exports/internvl/meta.json", (json.dumps(meta, indent=2) + "\n").encode(),
                   "export_meta", None, format="internvl")


def write_task(writer: ReleaseWriter, task: str, tables: Iterable[pa.Table], workdir: str,
               validation_fraction: float, data_part_max_rows: int, opts: ExportOptions) -> dict:
    """Write one task's release rows (``tables``: release rows, shard by shard).

    Returns ``{"rows": {source: n}, "splits": {split: n}, "internvl_meta": {...}}``."""
    names = splits.split_names(validation_fraction)
    data = {s: ParquetSpool(workdir, RELEASE_ROWS, data_part_max_rows) for s in names}
    spools = {fmt: line_spool(workdir, fmt, opts.part_max_bytes) for fmt in opts.formats}
    per_source: dict[str, int] = {}
    per_split = {s: 0 for s in names}
    for rows in tables:
        if rows.num_rows == 0:
            continue
        which = pa.array(splits.assign(rows, validation_fraction))
        for s in names:
            part = rows.filter(pc.equal(which, s))
            data[s].add(part)
            per_split[s] += part.num_rows
            if s == splits.TRAIN:
                export_shard(spools, part, opts)
        for src, n in zip(*pc.value_counts(rows.column("source")).flatten()):
            per_source[src.as_py()] = per_source.get(src.as_py(), 0) + n.as_py()
    out = {"rows": per_source, "splits": per_split, "internvl_meta": {}}
    if sum(per_split.values()) == 0:
        return out
    for s, spool in data.items():
        if per_split[s] == 0:  # no file: a config declares only the splits that have rows
            spool.finish()
            continue
        writer.put_parts(f"data/{task}", s, "parquet", spool.finish(), "data", task=task, split=s)
    out["internvl_meta"] = put_exports(writer, task, spools, opts)
    return out
