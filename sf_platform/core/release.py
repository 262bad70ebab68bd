"""Publish a versioned release: Parquet per task and shard, JSONL exports, card, manifest.

Layout (DESIGN.md "Object storage layout")::

    release/<version>/data/<task>/<source>-<shard>.parquet
    release/<version>/exports/{qwen,internvl,llava}/<task>-<source>-<shard>.jsonl
    release/<version>/README.md          dataset card (counts per task and source)
    release/<version>/manifest.json      files (rows, bytes, sha256), code and model versions,
                                         thresholds, profile -- written LAST

A release is complete exactly when its manifest exists (DESIGN amendment "Release publish"):
every file is written under the attempt's own staging prefix, and
:func:`sf_platform.storage.publish.publish` places them at ``release/<version>/`` and creates
the manifest last, exclusively (see there), so a reader that goes by the manifest never sees a
partial release and two runs never both publish a version.  A version whose manifest exists is
never rebuilt (published data is immutable); what a killed attempt left (staged files, or
files at the final prefix without a manifest) is ignored by readers and replaced by the next
attempt.

Releases made with the ``tiny`` model profile (random-weight test models) are refused unless
``allow_tiny=True``; then the card carries a warning banner and the manifest ``"tiny": true``.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re

import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.core import dataset_card, schemas
from sf_platform.core.exports import EXPORTERS, FORMATS, jsonl
from sf_platform.core.qa.balance import balance_report
from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.qa.settings import QASettings
from sf_platform.storage import layout
from sf_platform.storage.lock import DEFAULT_LEASE_S
from sf_platform.storage.object_store import PARQUET_COMPRESSION, ObjectStore
from sf_platform.storage.publish import (
    NotPublished,
    PublishConflict,
    Staging,
    new_staging,
    publish,
    require_published,
)

MANIFEST_FORMAT = "sf_platform-release/1"
STATS_COLUMNS = ["task", "template_id", "answer", "fact", "objects"]
QA_KEY = re.compile(
    r"^(?:.*/)?assets/qa_(?P<task>[a-z_]+)/(?P<source>[A-Za-z0-9_\-]+)/(?P<shard>[A-Za-z0-9_\-]+)\.parquet$"
)


class ReleaseError(ValueError):
    """A release cannot be built or read as asked; the message says why."""


class ReleaseConflict(ReleaseError):
    """The version is published already, or another run is publishing it."""


class TinyProfileError(ReleaseError):
    """The inputs were made with tiny random-weight test models and allow_tiny was not given."""


def release_prefix(version: str) -> str:
    try:
        return layout.release_prefix(version)
    except layout.LayoutError as exc:
        raise ReleaseError(str(exc)) from None


def tiny_ops(provenance: dict) -> list[str]:
    """Which ops ran with the tiny profile ("*" when the whole run's profile is tiny)."""
    out = ["*"] if provenance.get("profile") == "tiny" else []
    for op, info in sorted((provenance.get("models") or {}).items()):
        if isinstance(info, dict) and info.get("profile") == "tiny":
            out.append(op)
    return out


def _check_provenance(provenance: dict, allow_tiny: bool) -> bool:
    if not isinstance(provenance, dict) or provenance.get("profile") not in ("tiny", "real"):
        raise ReleaseError(
            "provenance must be a dict with 'profile' ('tiny' or 'real'), 'models' and 'code_versions'; "
            f"got profile={provenance.get('profile') if isinstance(provenance, dict) else provenance!r}"
        )
    tiny = tiny_ops(provenance)
    if tiny and not allow_tiny:
        raise TinyProfileError(
            f"refusing to build a release from inputs made with the 'tiny' model profile (ops: {', '.join(tiny)}): "
            "tiny random-weight test models give meaningless depths, masks and facings. "
            "Re-run the pipeline with the 'real' profile, or pass allow_tiny=True for a test release."
        )
    return bool(tiny)


def check_can_publish(store: ObjectStore, version: str, provenance: dict, allow_tiny: bool) -> bool:
    """Raise before anything is written when ``version`` is already published or its inputs
    came from tiny models without ``allow_tiny``; returns whether the release is tiny."""
    tiny = _check_provenance(provenance, allow_tiny)
    manifest = f"{release_prefix(version)}/manifest.json"
    if store.exists(manifest):
        raise ReleaseConflict(f"release {version} is already published ({store.uri(manifest)}); use a new version")
    return tiny


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=PARQUET_COMPRESSION)
    return buf.getvalue()


def _put(
    store: ObjectStore, prefix: str, rel: str, data: bytes, kind: str, rows: int | None, **extra
) -> dict:
    store.write_bytes(f"{prefix}/{rel}", data)
    return {
        "path": rel,
        "kind": kind,
        "rows": rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


def _load_qa(store: ObjectStore, key: str, task: str) -> pa.Table:
    table = store.read_table(key)
    try:
        table = schemas.conform(table, schemas.QA)
    except ValueError as exc:
        raise ReleaseError(f"{key}: not a QA table: {exc}") from exc
    tasks = set(table.column("task").to_pylist())
    if tasks - {task}:
        raise ReleaseError(
            f"{key}: holds rows of task(s) {sorted(tasks - {task})}, expected only {task!r}"
        )
    return table


def _exports(
    store, prefix, stem: str, table: pa.Table, fmt: str, settings: QASettings, **extra
) -> dict:
    records = EXPORTERS[fmt](table, multi_turn=settings.multi_turn, max_turns=settings.max_turns)
    data = jsonl(records)
    return _put(
        store,
        prefix,
        f"exports/{fmt}/{stem}.jsonl",
        data,
        "export",
        data.count(b"\n"),
        format=fmt,
        **extra,
    )


def build_release(
    store: ObjectStore,
    version: str,
    qa_tables: dict[str, list[str]],
    provenance: dict,
    settings: QASettings,
    allow_tiny: bool = False,
    staging: Staging | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> dict:
    """Publish ``qa_tables`` (task -> QA Parquet keys in ``store``) as release ``version``.

    Everything is written under ``staging`` (a fresh one when not given; the release asset
    passes the one its quality report went to) and published at the end; a
    :class:`ReleaseConflict` means another run published or is publishing ``version``, and
    nothing of this run is left anywhere.

    Returns ``{"version", "counts": {task: {source: rows}}, "totals": {task: rows}, "total",
    "files": [keys], "manifest": key, "tiny": bool}``.
    """
    final = release_prefix(version)
    tiny = check_can_publish(store, version, provenance, allow_tiny)
    staging = staging or new_staging(store, version)
    prefix = staging.prefix
    unknown = sorted(set(qa_tables) - set(schemas.TASKS))
    if unknown:
        raise ReleaseError(f"unknown tasks {unknown}; known: {list(schemas.TASKS)}")
    plan = []
    for task in schemas.TASKS:
        for key in sorted(qa_tables.get(task, [])):
            m = QA_KEY.match(key)
            if not m or m["task"] != task:
                raise ReleaseError(
                    f"{key!r} is not a QA table key of task {task!r} (assets/qa_{task}/<source>/<shard>.parquet)"
                )
            plan.append((task, m["source"], m["shard"], key))
    files: list[dict] = []
    counts: dict[str, dict[str, int]] = {t: {} for t in schemas.TASKS if t in qa_tables}
    for task, source, shard, key in plan:
        table = _load_qa(store, key, task)
        counts[task][source] = counts[task].get(source, 0) + table.num_rows
        if table.num_rows == 0:
            continue  # an empty shard adds no file (a config's glob must only match real data)
        stem = f"{source}-{shard}"
        files.append(
            _put(
                store,
                prefix,
                f"data/{task}/{stem}.parquet",
                _parquet_bytes(table),
                "data",
                table.num_rows,
                task=task,
                source=source,
                shard=shard,
                input=key,
            )
        )
        for fmt in FORMATS:
            files.append(
                _exports(
                    store,
                    prefix,
                    f"{task}-{stem}",
                    table,
                    fmt,
                    settings,
                    task=task,
                    source=source,
                    shard=shard,
                )
            )
    code_versions = {
        **{f"qa_{t}": v for t, v in TASK_CODE_VERSIONS.items()},
        **(provenance.get("code_versions") or {}),
    }
    card = dataset_card.render(version, counts, provenance, settings, tiny, code_versions)
    files.append(_put(store, prefix, "README.md", card.encode("utf-8"), "card", None))
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "profile": provenance.get("profile"),
        "tiny": tiny,
        "models": provenance.get("models") or {},
        "code_versions": code_versions,
        "thresholds": settings.model_dump(),
        "counts": counts,
        "files": files,
    }
    try:
        manifest_key = publish(staging, manifest, lease_s)
    except PublishConflict as exc:
        raise ReleaseConflict(str(exc)) from None
    totals = {t: sum(v.values()) for t, v in counts.items()}
    return {
        "version": version,
        "counts": counts,
        "totals": totals,
        "total": sum(totals.values()),
        "files": [f"{final}/{f['path']}" for f in files],
        "manifest": manifest_key,
        "tiny": tiny,
    }


def read_manifest(store: ObjectStore, version: str) -> dict:
    """The manifest of a published ``version``; a :class:`ReleaseError` saying what is there
    instead (nothing, a staged or an interrupted publish) when it has none."""
    release_prefix(version)
    try:
        key = require_published(store, version)
    except NotPublished as exc:
        raise ReleaseError(str(exc)) from None
    return json.loads(store.read_text(key))


def _data_files(manifest: dict) -> list[dict]:
    return [f for f in manifest["files"] if f["kind"] == "data"]


def export_release(store: ObjectStore, version: str, fmt: str) -> list[str]:
    """Re-export a published release to ``fmt`` (qwen|internvl|llava); the manifest is updated last."""
    if fmt not in FORMATS:
        raise ReleaseError(f"unknown export format {fmt!r}; known: {list(FORMATS)}")
    prefix = release_prefix(version)
    manifest = read_manifest(store, version)
    settings = QASettings(**manifest["thresholds"])
    old = {f["path"] for f in manifest["files"] if f["kind"] == "export" and f.get("format") == fmt}
    new = []
    for f in _data_files(manifest):
        table = store.read_table(f"{prefix}/{f['path']}")
        stem = posixpath.splitext(posixpath.basename(f["path"]))[0]
        new.append(
            _exports(
                store,
                prefix,
                f"{f['task']}-{stem}",
                table,
                fmt,
                settings,
                task=f["task"],
                source=f["source"],
                shard=f["shard"],
            )
        )
    for rel in sorted(old - {e["path"] for e in new}):
        store.delete(f"{prefix}/{rel}")
    manifest["files"] = [f for f in manifest["files"] if f["path"] not in old] + new
    store.write_text(
        f"{prefix}/manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    )
    return [f"{prefix}/{e['path']}" for e in new]


def release_stats(store: ObjectStore, version: str) -> dict:
    """Counts per task x source and each task's balance figures (:func:`balance_report`)."""
    prefix = release_prefix(version)
    manifest = read_manifest(store, version)
    settings = QASettings(**manifest["thresholds"])
    by_task: dict[str, list[str]] = {}
    for f in _data_files(manifest):
        by_task.setdefault(f["task"], []).append(f"{prefix}/{f['path']}")
    counts = {t: dict(v) for t, v in manifest["counts"].items()}
    balance = {  # only the columns balance_report reads (no questions, evidence or URIs)
        t: balance_report(pa.concat_tables([store.read_table(k, columns=STATS_COLUMNS) for k in keys]), settings)
        for t, keys in sorted(by_task.items())
    }
    totals = {t: sum(v.values()) for t, v in counts.items()}
    return {
        "version": version,
        "profile": manifest["profile"],
        "tiny": manifest["tiny"],
        "counts": counts,
        "totals": totals,
        "total": sum(totals.values()),
        "balance": balance,
    }
