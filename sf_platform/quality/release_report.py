"""Audit a release's QA tables as a whole, and write its data-quality report.

Used by the ``release`` asset and by ``sf-platform report``.  The audit
(:mod:`sf_platform.quality.release_audit`) streams the release a group of partitions at a time
and judges balance and volume over the whole release, before anything of the release is
written; the per-partition gates already ran in the QA assets.  GX Data Docs are built into a
temporary folder that lives as long as the audit's context, and copied beside the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sf_platform.core.release import read_manifest
from sf_platform.quality.release_audit import ReleaseAudit, audit_release, release_tasks
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore, read_uri

__all__ = [
    "ReleaseAudit",
    "ReleaseReport",
    "audit_release",
    "partition_keys",
    "partition_of",
    "write_partition_report",
    "write_release_report",
    "write_report",
]

partition_of = layout.partition_of  # ``assets/<asset>/<source>/<shard>.parquet`` -> ``<source>/<shard>``


@dataclass(frozen=True)
class ReleaseReport:
    index_key: str
    summary_markdown: str
    passed: bool


def partition_keys(keys_by_task: dict[str, list[str]], shard_key: str) -> dict[str, list[str]]:
    """Only one shard's QA keys; ``shard_key`` must be ``<source>/<shard>``."""
    try:
        layout.split_shard_key(shard_key)
    except layout.LayoutError:
        raise ValueError(f"a partition is '<source>/<shard>' (e.g. o365_val/00042), got {shard_key!r}") from None
    return {t: [k for k in keys if partition_of(k) == shard_key] for t, keys in keys_by_task.items()}


def write_report(store: ObjectStore, version: str, audit: ReleaseAudit, funnel: dict, settings,
                 s3=None, out_prefix: str | None = None, changes_markdown: str = "") -> ReleaseReport:
    """The HTML report (plots, gallery, every check with its Data Docs) under
    ``release/<version>/quality/`` (or ``out_prefix``: the release asset passes its staging
    prefix, so the report is published with the release and never written into another run's)."""
    from sf_platform.quality.report import build_report, report_summary_markdown

    endpoint = s3.endpoint_url if s3 else None
    region = s3.region if s3 else None

    def load_image_bytes(uri: str) -> bytes:
        return read_uri(uri, endpoint, region)

    exact = {"counts": audit.counts, "images_with_qa": audit.images_with_qa}
    key = build_report(store, version, audit.sample, funnel, audit.validation, load_image_bytes,
                       out_prefix=out_prefix, settings=settings, changes_markdown=changes_markdown, **exact)
    summary = report_summary_markdown(audit.sample, funnel, audit.validation, **exact) + (
        f"\n\n{changes_markdown}" if changes_markdown else "")
    return ReleaseReport(index_key=key, summary_markdown=summary, passed=audit.passed)


def write_release_report(store: ObjectStore, version: str, keys_by_task: dict[str, list[str]], funnel: dict,
                         settings, s3=None, select=None) -> ReleaseReport:
    """Re-audit the QA partitions behind a *published* release and write the report under
    ``reports/.releases/<version>/`` (``sf-platform report VERSION``).  A published release is
    immutable, so its own ``quality/`` (written by the run that published it) is never
    rewritten; a staged or interrupted version raises a ValueError saying so."""
    read_manifest(store, version)
    with audit_release(store, release_tasks(keys_by_task), settings, select=select) as audit:
        return write_report(store, version, audit, funnel, settings, s3,
                            out_prefix=layout.release_report_prefix(version))


def write_partition_report(store: ObjectStore, shard_key: str, keys_by_task: dict[str, list[str]],
                           funnel: dict, settings, s3=None) -> ReleaseReport:
    """The same report for one partition, on demand, under ``reports/<source>/<shard>/``."""
    keys = partition_keys(keys_by_task, shard_key)
    if not any(keys.values()):
        raise ValueError(f"no QA tables for partition {shard_key!r} in {store.root}")
    with audit_release(store, keys, settings) as audit:
        return write_report(store, shard_key, audit, funnel, settings, s3, out_prefix=layout.report_prefix(shard_key))
