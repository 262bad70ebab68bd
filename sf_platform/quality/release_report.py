"""Glue: validate a release's QA tables as a whole and write its data-quality report.

Used by the ``release`` asset and by ``sf-platform report``.  Validation here is over each
task's whole table (balance over the release, not a shard); the per-partition gates ran in the
QA assets before anything was written.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pyarrow as pa

from sf_platform.core.schemas import IMAGES, QA, SCENE
from sf_platform.storage.object_store import ObjectStore, read_uri


@dataclass(frozen=True)
class ReleaseReport:
    index_key: str
    summary_markdown: str
    passed: bool


def load_qa_tables(store: ObjectStore, keys_by_task: dict[str, list[str]]) -> dict[str, pa.Table]:
    return {task: store.read_tables(keys, schema=QA) for task, keys in keys_by_task.items()}


def _write(store, version, tables, funnel, validation, settings, s3) -> str:
    from sf_platform.quality.report import build_report

    endpoint = s3.endpoint_url if s3 else None
    region = s3.region if s3 else None

    def load_image_bytes(uri: str) -> bytes:
        return read_uri(uri, endpoint, region)

    return build_report(store, version, tables, funnel, validation, load_image_bytes, settings=settings)


def write_release_report(store: ObjectStore, version: str, keys_by_task: dict[str, list[str]],
                         funnel: dict, settings, s3=None) -> ReleaseReport:
    from sf_platform.quality.report import report_summary_markdown
    from sf_platform.quality.suites import validate_qa

    tables = load_qa_tables(store, keys_by_task)
    # The identity checks need the scene and curated images the QA tables were built from.
    scene = store.read_tables(store.list("assets/scene", ".parquet"), schema=SCENE)
    images = store.read_tables(store.list("assets/images", ".parquet"), schema=IMAGES)
    with tempfile.TemporaryDirectory() as docs_dir:
        validation = {
            task: validate_qa(t, settings, scene=scene, images=images, expected_images=images.num_rows,
                              data_docs_dir=f"{docs_dir}/{task}", name=task)
            for task, t in tables.items()
            if t.num_rows
        }
        key = _write(store, version, tables, funnel, validation, settings, s3)
    summary = report_summary_markdown(tables, funnel, validation)
    return ReleaseReport(index_key=key, summary_markdown=summary,
                         passed=all(v.passed for v in validation.values()))
