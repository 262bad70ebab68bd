"""Audit a release's QA tables as a whole, and write its data-quality report.

Used by the ``release`` asset and by ``sf-platform report``.  The audit runs over each task's
whole table (balance over the release, not a shard) with the scene and curated images the
tables were built from, before anything of the release is written; the per-partition gates
already ran in the QA assets.  GX Data Docs are built into a temporary folder that lives as
long as the :class:`ReleaseAudit` context, and copied beside the report.
"""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from sf_platform.core.near_duplicates import drop_near_duplicates, read_near_duplicates
from sf_platform.core.schemas import IMAGES, QA, SCENE
from sf_platform.storage.object_store import ObjectStore, read_uri


@dataclass(frozen=True)
class ReleaseAudit:
    tables: dict[str, pa.Table]
    validation: dict  # task -> ValidationReport

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.validation.values())

    def failures(self) -> dict[str, list]:
        return {t: [o for o in v.failures() if o.severity == "ERROR"] for t, v in self.validation.items()
                if not v.passed}


@dataclass(frozen=True)
class ReleaseReport:
    index_key: str
    summary_markdown: str
    passed: bool


def load_qa_tables(store: ObjectStore, keys_by_task: dict[str, list[str]]) -> dict[str, pa.Table]:
    near_dups = read_near_duplicates(store)  # their QA is not released, so not audited
    return {task: drop_near_duplicates(store.read_tables(keys, schema=QA), near_dups)
            for task, keys in keys_by_task.items()}


SHARD_KEY = re.compile(r"^[A-Za-z0-9_\-]+/[^/]+$")


def partition_of(key: str) -> str:
    """``assets/<asset>/<source>/<shard>.parquet`` -> ``<source>/<shard>``."""
    return key.split("/", 2)[2].removesuffix(".parquet")


def partition_keys(keys_by_task: dict[str, list[str]], shard_key: str) -> dict[str, list[str]]:
    """Only one shard's QA keys; ``shard_key`` must be ``<source>/<shard>``."""
    if not SHARD_KEY.match(shard_key):
        raise ValueError(f"a partition is '<source>/<shard>' (e.g. o365_val/00042), got {shard_key!r}")
    return {t: [k for k in keys if partition_of(k) == shard_key] for t, keys in keys_by_task.items()}


def _tables_of(store: ObjectStore, asset: str, partitions: set[str], schema) -> pa.Table:
    keys = [k for k in store.list(f"assets/{asset}", ".parquet") if partition_of(k) in partitions]
    return store.read_tables(keys, schema=schema)


@contextmanager
def audit_release(store: ObjectStore, keys_by_task: dict[str, list[str]], settings, select=None):
    """Validate every task's whole table in memory, empty ones too (an empty task is a silent
    failure the volume floors catch); yields a :class:`ReleaseAudit`.  The scene and curated
    images are those of the partitions the QA keys come from, so stale or failed shards in the
    store neither inflate the expected volume nor vouch for identities."""
    from sf_platform.quality.suites import validate_qa

    tables = load_qa_tables(store, keys_by_task)
    if select is not None:  # the release's task mix (core/release_mix.py): audit what is released
        tables = {task: select(task, t) for task, t in tables.items()}
    partitions = {partition_of(k) for keys in keys_by_task.values() for k in keys}
    scene = _tables_of(store, "scene", partitions, SCENE)
    images = _tables_of(store, "images", partitions, IMAGES)
    with tempfile.TemporaryDirectory() as docs_dir:
        validation = {
            task: validate_qa(t, settings, scene=scene, images=images, expected_images=images.num_rows,
                              data_docs_dir=f"{docs_dir}/{task}", name=task, tasks=[task])
            for task, t in tables.items()
        }
        yield ReleaseAudit(tables=tables, validation=validation)


def write_report(store: ObjectStore, version: str, audit: ReleaseAudit, funnel: dict, settings,
                 s3=None, out_prefix: str | None = None, changes_markdown: str = "") -> ReleaseReport:
    """The HTML report (plots, gallery, every check with its Data Docs) under
    ``release/<version>/quality/`` (or ``out_prefix``)."""
    from sf_platform.quality.report import build_report, report_summary_markdown

    endpoint = s3.endpoint_url if s3 else None
    region = s3.region if s3 else None

    def load_image_bytes(uri: str) -> bytes:
        return read_uri(uri, endpoint, region)

    key = build_report(store, version, audit.tables, funnel, audit.validation, load_image_bytes,
                       out_prefix=out_prefix, settings=settings, changes_markdown=changes_markdown)
    summary = report_summary_markdown(audit.tables, funnel, audit.validation) + (
        f"\n\n{changes_markdown}" if changes_markdown else "")
    return ReleaseReport(index_key=key, summary_markdown=summary, passed=audit.passed)


def write_release_report(store: ObjectStore, version: str, keys_by_task: dict[str, list[str]],
                         funnel: dict, settings, s3=None) -> ReleaseReport:
    """Audit and report in one call (``sf-platform report``)."""
    with audit_release(store, keys_by_task, settings) as audit:
        return write_report(store, version, audit, funnel, settings, s3)


def write_partition_report(store: ObjectStore, shard_key: str, keys_by_task: dict[str, list[str]],
                           funnel: dict, settings, s3=None) -> ReleaseReport:
    """The same report for one partition, on demand, under ``reports/<source>/<shard>/``."""
    keys = partition_keys(keys_by_task, shard_key)
    if not any(keys.values()):
        raise ValueError(f"no QA tables for partition {shard_key!r} in {store.root}")
    with audit_release(store, keys, settings) as audit:
        return write_report(store, shard_key, audit, funnel, settings, s3, out_prefix=f"reports/{shard_key}")
