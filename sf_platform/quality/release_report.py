"""Audit a release's QA tables as a whole, and write its data-quality report.

Used by the ``release`` asset and by ``sf-platform report``.  The audit runs over each task's
whole table (balance over the release, not a shard) with the scene and curated images the
tables were built from, before anything of the release is written; the per-partition gates
already ran in the QA assets.  GX Data Docs are built into a temporary folder that lives as
long as the :class:`ReleaseAudit` context, and copied beside the report.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

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
    return {task: store.read_tables(keys, schema=QA) for task, keys in keys_by_task.items()}


def partition_keys(keys_by_task: dict[str, list[str]], shard_key: str) -> dict[str, list[str]]:
    """Only one shard's QA keys (``assets/qa_<task>/<source>/<shard>.parquet``)."""
    suffix = f"/{shard_key}.parquet"
    return {t: [k for k in keys if k.endswith(suffix)] for t, keys in keys_by_task.items()}


@contextmanager
def audit_release(store: ObjectStore, keys_by_task: dict[str, list[str]], settings,
                  shard_key: str | None = None):
    """Validate every task's whole table in memory; yields a :class:`ReleaseAudit`.

    With ``shard_key`` (``"<source>/<shard>"``) only that partition's tables, scene and images.
    """
    from sf_platform.quality.suites import validate_qa

    tables = load_qa_tables(store, keys_by_task)
    only = f"/{shard_key}.parquet" if shard_key else ".parquet"
    scene = store.read_tables([k for k in store.list("assets/scene", ".parquet") if k.endswith(only)],
                              schema=SCENE)
    images = store.read_tables([k for k in store.list("assets/images", ".parquet") if k.endswith(only)],
                               schema=IMAGES)
    with tempfile.TemporaryDirectory() as docs_dir:
        validation = {
            task: validate_qa(t, settings, scene=scene, images=images, expected_images=images.num_rows,
                              data_docs_dir=f"{docs_dir}/{task}", name=task, tasks=[task])
            for task, t in tables.items()
            if t.num_rows
        }
        yield ReleaseAudit(tables=tables, validation=validation)


def write_report(store: ObjectStore, version: str, audit: ReleaseAudit, funnel: dict, settings,
                 s3=None, out_prefix: str | None = None) -> ReleaseReport:
    """The HTML report (plots, gallery, every check with its Data Docs) under
    ``release/<version>/quality/`` (or ``out_prefix``)."""
    from sf_platform.quality.report import build_report, report_summary_markdown

    endpoint = s3.endpoint_url if s3 else None
    region = s3.region if s3 else None

    def load_image_bytes(uri: str) -> bytes:
        return read_uri(uri, endpoint, region)

    key = build_report(store, version, audit.tables, funnel, audit.validation, load_image_bytes,
                       out_prefix=out_prefix, settings=settings)
    summary = report_summary_markdown(audit.tables, funnel, audit.validation)
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
    with audit_release(store, keys, settings, shard_key=shard_key) as audit:
        return write_report(store, shard_key, audit, funnel, settings, s3, out_prefix=f"reports/{shard_key}")
