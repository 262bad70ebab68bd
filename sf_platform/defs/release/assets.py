"""The release: every checked QA partition collected into the published layout of DESIGN.md.

QA partitions exist at their keys only after their blocking checks passed (write-audit-publish
in the QA assets), so the release reads what is in the store.  The release itself is validated
as a whole (balance holds per task over the whole release, not only per shard) before
``build_release`` writes it; its manifest is written last, so a reader that finds
``manifest.json`` finds a complete release.
"""


import dagster as dg

from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release import build_release
from sf_platform.core.release_inputs import collect_funnel, collect_provenance, qa_keys_by_task
from sf_platform.core.schemas import TASKS
from sf_platform.defs.metadata import plain
from sf_platform.defs.qa.assets import qa_asset_name
from sf_platform.defs.resources import PlatformResource


class ReleaseConfig(dg.Config):
    version: str = "v0.1.0"
    allow_tiny: bool = False
    report: bool = True


@dg.asset(
    group_name="release",
    deps=[qa_asset_name(t) for t in TASKS],
    code_version="1",
    description="Parquet per task and source, Qwen-VL/InternVL/LLaVA JSONL exports, dataset "
    "card, manifest and the data-quality report under <root>/release/<version>/.",
)
def release(context: dg.AssetExecutionContext, config: ReleaseConfig, platform: PlatformResource):
    cfg = platform.load()
    store = platform.store()
    settings = QASettings(**cfg.qa)
    keys = qa_keys_by_task(store)
    provenance = collect_provenance(store, cfg, TASK_CODE_VERSIONS)
    summary = build_release(store, config.version, keys, provenance, settings, allow_tiny=config.allow_tiny)
    metadata = {
        "version": dg.MetadataValue.text(config.version),
        "release_uri": dg.MetadataValue.path(store.uri(f"release/{config.version}")),
        "profile": dg.MetadataValue.text(provenance.get("profile", "")),
        "summary": dg.MetadataValue.json(summary),
    }
    if config.report:
        from sf_platform.quality.release_report import write_release_report

        report = write_release_report(store, config.version, keys, collect_funnel(store), settings, cfg.s3)
        metadata["quality_report"] = dg.MetadataValue.url(store.uri(report.index_key))
        metadata["quality_summary"] = dg.MetadataValue.md(report.summary_markdown)
        metadata.update(plain({"checks_passed": report.passed}))
    return dg.MaterializeResult(metadata=metadata)
