"""Publish a versioned release: Parquet per task and split, consolidated exports, card, manifest.

Layout (DESIGN.md "Object storage layout", with its December amendments)::

    release/<version>/data/<task>/<split>[-part-NNNNN-of-NNNNN].parquet     train / validation
    release/<version>/exports/{qwen,internvl,llava}/<task>[-part-...].{jsonl,json}
    release/<version>/exports/internvl/<task>_meta.json, meta.json          InternVL --meta_path
    release/<version>/README.md          dataset card (configs, features, licences, mix, diff)
    release/<version>/manifest.json      files (rows, bytes, sha256), image roots, licences,
                                         code and model versions, thresholds -- written LAST

What a release contains is built in :mod:`release_writer` (rows, splits, parts, exports),
:mod:`release_mix` (task quotas/shares), :mod:`licenses` and :mod:`release_diff`; this module
plans, checks and publishes.

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

import json
import re
import tempfile
from collections import Counter
from datetime import UTC, datetime
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.config import ReleaseSettings
from sf_platform.core import dataset_card, schemas
from sf_platform.core.exports import BOX_FORMATS, FORMATS
from sf_platform.core.licenses import SourceTerms, describe, read_image_licenses
from sf_platform.core.near_duplicates import drop_near_duplicates, read_near_duplicates
from sf_platform.core.qa.balance import balance_report
from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release_diff import diff_index, release_index
from sf_platform.core.release_mix import PLAN_COLUMNS, MixPlan, TaskMix, plan_mix
from sf_platform.core.release_rows import release_rows
from sf_platform.core.release_writer import (
    DEFAULT_IMAGES_ROOT,
    ExportOptions,
    ReleaseWriter,
    export_shard,
    line_spool,
    put_exports,
    put_meta_index,
    write_task,
)
from sf_platform.storage import layout
from sf_platform.storage.lock import DEFAULT_LEASE_S
from sf_platform.storage.object_store import ObjectStore, open_uri
from sf_platform.storage.publish import (
    NotPublished,
    PublishConflict,
    Staging,
    new_staging,
    publish,
    require_published,
)

MANIFEST_FORMAT = "sf_platform-release/2"
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



def _plan(qa_tables: dict[str, list[str]]) -> dict[str, list[tuple[str, str, str]]]:
    """task -> [(source, shard, key)], every key checked against the QA key pattern."""
    unknown = sorted(set(qa_tables) - set(schemas.TASKS))
    if unknown:
        raise ReleaseError(f"unknown tasks {unknown}; known: {list(schemas.TASKS)}")
    plan: dict[str, list[tuple[str, str, str]]] = {}
    for task in schemas.TASKS:
        if task not in qa_tables:
            continue
        plan[task] = []
        for key in sorted(qa_tables[task]):
            m = QA_KEY.match(key)
            if not m or m["task"] != task:
                raise ReleaseError(
                    f"{key!r} is not a QA table key of task {task!r} (assets/qa_{task}/<source>/<shard>.parquet)"
                )
            plan[task].append((m["source"], m["shard"], key))
    return plan


def plan_release_mix(store: ObjectStore, qa_tables: dict[str, list[str]], mix: TaskMix | None) -> MixPlan:
    """The task mix over these QA tables (row counts only when no mix is asked)."""
    cols = PLAN_COLUMNS if mix else []
    loaders = {t: [partial(store.read_table, k, columns=cols) for _, _, k in items]
               for t, items in _plan(qa_tables).items()}
    return plan_mix(mix, loaders)


def _per_image_licenses(store: ObjectStore, plan, terms: dict[str, SourceTerms]) -> dict[str, pa.Table]:
    out = {}
    for name, t in terms.items():
        keys = [k for items in plan.values() for s, _, k in items if s == name]
        if not t.image_licenses or not keys:
            continue
        wanted = pa.chunked_array([pc.unique(store.read_table(k, columns=["image_id"]).column("image_id"))
                                   for k in keys], pa.string())
        with open_uri(t.image_licenses, store.endpoint_url, store.region) as fh:
            out[name] = read_image_licenses(fh, t.image_licenses, pc.unique(wanted))
    return out


def _release_tables(store, task, items, mix_plan: MixPlan, terms, per_image, licenses_seen: Counter,
                    near_dups):
    """Each QA partition as released: near-duplicate images' rows left out, the task mix
    applied, then the release columns (portable image path, licence)."""
    for source, _shard, key in items:
        if source not in terms:
            raise ReleaseError(
                f"{key}: source {source!r} has no declared licence and image origin (not in the config's "
                "sources); a release states both for every source")
        table = drop_near_duplicates(_load_qa(store, key, task), near_dups)
        rows = release_rows(mix_plan.apply(task, table), terms[source], per_image.get(source))
        for lic, n in zip(*pc.value_counts(rows.column("license")).flatten()):
            licenses_seen[(lic.as_py(), source)] += n.as_py()
        yield rows


def _licenses_summary(seen: Counter) -> dict:
    out: dict = {}
    for (lic, source), n in sorted(seen.items()):
        name, url = describe(lic)
        cell = out.setdefault(lic, {"name": name, "url": url, "rows": 0, "sources": []})
        cell["rows"] += n
        cell["sources"].append(source)
    return out


def build_release(
    store: ObjectStore,
    version: str,
    qa_tables: dict[str, list[str]],
    provenance: dict,
    settings: QASettings,
    allow_tiny: bool = False,
    *,
    sources: dict[str, SourceTerms],
    release: ReleaseSettings | None = None,
    mix_plan: MixPlan | None = None,
    previous: str | None = None,
    staging: Staging | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> dict:
    """Publish ``qa_tables`` (task -> QA Parquet keys in ``store``) as release ``version``.

    ``sources`` states each source's licence and image origin; ``release`` the split, part and
    mix settings; ``mix_plan`` the rows to keep (made here from ``release.mix`` when not given,
    so the audit and the release can share one); ``previous`` a published version to diff
    against.  Everything is written under ``staging`` (a fresh one when not given; the release
    asset passes the one its quality report went to) and published at the end: a
    :class:`ReleaseConflict` means another run published or is publishing ``version``, and
    nothing of this run is left anywhere.  Returns ``{"version", "counts": {task: {source:
    rows}}, "totals": {task: rows}, "total", "splits", "files": [keys], "manifest": key,
    "tiny": bool, "diff"}``.
    """
    release = release or ReleaseSettings()
    final = release_prefix(version)
    tiny = check_can_publish(store, version, provenance, allow_tiny)
    staging = staging or new_staging(store, version)
    prefix = staging.prefix
    plan = _plan(qa_tables)
    old_manifest = read_manifest(store, previous) if previous else None
    if old_manifest is not None and old_manifest.get("format") != MANIFEST_FORMAT:
        raise ReleaseError(f"release {previous} is in format {old_manifest.get('format')!r}, made before "
                           f"{MANIFEST_FORMAT!r} rows carried content hashes: it cannot be diffed")
    mix_plan = mix_plan or plan_release_mix(store, qa_tables, release.mix)
    per_image = _per_image_licenses(store, plan, sources)
    writer = ReleaseWriter(store, prefix)
    opts = ExportOptions(FORMATS, release.export_part_max_bytes, settings.multi_turn, settings.max_turns)
    counts: dict[str, dict[str, int]] = {}
    split_counts: dict[str, dict[str, int]] = {}
    internvl_meta: dict = {}
    seen: Counter = Counter()
    near_dups = read_near_duplicates(store)  # their QA is not released
    with tempfile.TemporaryDirectory(prefix="sf-release-") as work:
        for task, items in plan.items():
            res = write_task(writer, task, _release_tables(store, task, items, mix_plan, sources, per_image, seen,
                                                           near_dups),
                             work, release.validation_fraction, release.data_part_max_rows, opts)
            counts[task], split_counts[task] = res["rows"], res["splits"]
            internvl_meta.update(res["internvl_meta"])
    put_meta_index(writer, internvl_meta)
    diff = None
    if old_manifest is not None:
        diff = diff_index(release_index(store, release_prefix(previous), old_manifest["files"]),
                          release_index(store, prefix, writer.files))
    code_versions = {
        **{f"qa_{t}": v for t, v in TASK_CODE_VERSIONS.items()},
        **(provenance.get("code_versions") or {}),
    }
    facts = {
        "version": version, "counts": counts, "splits": split_counts, "tiny": tiny,
        "provenance": provenance, "code_versions": code_versions, "thresholds": settings.model_dump(),
        "licenses": _licenses_summary(seen),
        "image_roots": {n: {"path": f"{n}/", "origin": t.images_origin, "license": t.license}
                        for n, t in sorted(sources.items()) if any(n in c for c in counts.values())},
        "validation_fraction": release.validation_fraction,
        "mix": {**mix_plan.summary(), "config": release.mix.model_dump() if release.mix else None},
        "diff": {"previous": previous, "by_task": diff} if diff is not None else None,
    }
    card = dataset_card.render(facts)
    writer.put("README.md", card.encode("utf-8"), "card", None)
    manifest = {
        "format": MANIFEST_FORMAT,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": provenance.get("profile"),
        "models": provenance.get("models") or {},
        **{k: v for k, v in facts.items() if k not in ("provenance",)},
        "files": writer.files,
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
        "splits": split_counts,
        "files": [f"{final}/{f['path']}" for f in writer.files],
        "manifest": manifest_key,
        "tiny": tiny,
        "diff": diff,
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


def latest_published(store: ObjectStore, exclude: str | None = None) -> str | None:
    """The most recently published release other than ``exclude`` (by the manifest's
    ``published_at``), the default a new release is diffed against; None when there is none."""
    best: tuple[str, str] | None = None
    for key in store.list("release", "/manifest.json"):
        parts = key.split("/")
        if len(parts) != 3 or parts[1] == exclude or parts[1].startswith("."):
            continue
        man = json.loads(store.read_text(key))
        if man.get("format") != MANIFEST_FORMAT:
            continue  # made before content hashes: nothing to diff against
        stamp = man.get("published_at") or ""
        if best is None or (stamp, parts[1]) > best:
            best = (stamp, parts[1])
    return best[1] if best else None


def _data_files(manifest: dict, split: str | None = None) -> list[dict]:
    return [f for f in manifest["files"] if f["kind"] == "data" and split in (None, f.get("split"))]


def export_release(store: ObjectStore, version: str, fmt: str, out: ObjectStore, images_root: str = "",
                   box_format: str = "qwen3", part_max_bytes: int | None = None) -> list[str]:
    """Export a published release's train split to ``fmt`` under ``out`` (``exports/<fmt>/...``),
    image paths under ``images_root``; the release itself is never changed."""
    if fmt not in FORMATS:
        raise ReleaseError(f"unknown export format {fmt!r}; known: {list(FORMATS)}")
    if box_format not in BOX_FORMATS or (box_format != "qwen3" and fmt != "qwen"):
        raise ReleaseError(f"box format {box_format!r}: qwen takes {list(BOX_FORMATS)}, other formats qwen3")
    prefix = release_prefix(version)
    manifest = read_manifest(store, version)
    settings = QASettings(**manifest["thresholds"])
    local = out.root.removeprefix("file://") if out.root.startswith("file://") else out.root
    # InternVL joins its meta's ``root`` with each record's image: the folder goes there; the
    # others read the image path as written, so it goes in front of each record's image.
    opts = ExportOptions((fmt,), part_max_bytes or ReleaseSettings().export_part_max_bytes, settings.multi_turn,
                         settings.max_turns, box_format, "" if fmt == "internvl" else images_root,
                         meta_root=images_root or DEFAULT_IMAGES_ROOT, meta_annotation_base=f"{local.rstrip('/')}/")
    writer = ReleaseWriter(out, "")
    by_task: dict[str, list[str]] = {}
    for f in _data_files(manifest, "train"):
        by_task.setdefault(f["task"], []).append(f"{prefix}/{f['path']}")
    meta: dict = {}
    with tempfile.TemporaryDirectory(prefix="sf-export-") as work:
        for task in schemas.TASKS:
            if task not in by_task:
                continue
            spools = {fmt: line_spool(work, fmt, opts.part_max_bytes)}
            for key in sorted(by_task[task]):
                export_shard(spools, store.read_table(key), opts)
            meta.update(put_exports(writer, task, spools, opts))
    put_meta_index(writer, meta)
    return [writer.key(f["path"]) for f in writer.files]


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
        "splits": manifest.get("splits"),
        "balance": balance,
    }
