"""The release: every checked QA partition collected into the published layout of DESIGN.md.

QA partitions exist at their keys only after their blocking checks passed (write-audit-publish
in the QA assets).  The release then audits the collected tables as a whole (balance holds per
task over the whole release, not only per shard) and reports that as its own blocking check
*before* writing anything: a failed audit raises, and nothing under ``release/<version>/``
appears.  A release that shrank against the previous one, or whose images were mostly
quarantined, is refused the same way unless ``allow_shrink`` (core/release_guard.py).  The
quality report and then the data, exports and card are written under this run's staging
prefix, and ``build_release`` publishes them with ``manifest.json`` last and exclusively
(storage/publish.py), so a reader that finds the manifest finds a complete, checked release,
and a run that loses a race for the version touches nothing the winner wrote.
"""

import dagster as dg

from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.release import ReleaseError, build_release, check_can_publish
from sf_platform.core.release_guard import check_release_volume
from sf_platform.core.release_inputs import collect_funnel, collect_provenance, qa_keys_by_task
from sf_platform.core.schemas import TASKS
from sf_platform.defs.checks import outcome_metadata
from sf_platform.defs.qa.assets import qa_asset_name
from sf_platform.defs.resources import PlatformResource
from sf_platform.storage import layout
from sf_platform.storage.publish import discard, new_staging


class ReleaseConfig(dg.Config):
    version: str = "v0.1.0"
    allow_tiny: bool = False
    # Publish even when a task shrank against the previous release or most images were
    # quarantined (`--allow-shrink`; also release.allow_shrink in config).
    allow_shrink: bool = False


def _audit_check(audit) -> dg.AssetCheckResult:
    failures = audit.failures()
    return dg.AssetCheckResult(
        check_name="release_suite",
        passed=audit.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_per_task": dg.MetadataValue.json({t: v.rows for t, v in audit.validation.items()}),
            "failed_expectations": dg.MetadataValue.json(
                {t: {o.name: outcome_metadata(o) for o in fs} for t, fs in failures.items()}
            ),
            "warnings": dg.MetadataValue.int(sum(
                1 for v in audit.validation.values() for o in v.outcomes
                if not o.success and o.severity == "WARN")),
        },
    )


@dg.asset(
    group_name="release",
    deps=[qa_asset_name(t) for t in TASKS],
    code_version="1",
    check_specs=[dg.AssetCheckSpec("release_suite", asset="release", blocking=True,
                                   description="All expectation suites over each task's whole table.")],
    description="Parquet per task and source, Qwen-VL/InternVL/LLaVA JSONL exports, dataset "
    "card, manifest and the data-quality report under <root>/release/<version>/.",
)
def release(context: dg.AssetExecutionContext, config: ReleaseConfig, platform: PlatformResource):
    from sf_platform.quality.release_report import audit_release, write_report

    cfg = platform.load()
    store = platform.store()
    settings = cfg.qa
    keys = qa_keys_by_task(store)
    provenance = collect_provenance(store, cfg, TASK_CODE_VERSIONS)
    funnel = collect_funnel(store)
    try:  # refuse a published version, tiny inputs or a degraded release before anything is written
        check_can_publish(store, config.version, provenance, config.allow_tiny)
        shrink = check_release_volume(store, config.version, keys, funnel, cfg.release, config.allow_shrink)
    except ReleaseError as exc:
        raise dg.Failure(description=str(exc)) from None
    if shrink:
        context.log.warning("publishing a degraded release (allow_shrink): " + "; ".join(shrink))
    staging = new_staging(store, config.version)
    with audit_release(store, keys, settings) as audit:
        yield _audit_check(audit)
        if not audit.passed:
            lines = [f"{t}: {o.name} ({o.unexpected_count} rows)" for t, fs in audit.failures().items() for o in fs]
            raise dg.Failure(description=f"release {config.version} not published, audit failed:\n"
                             + "\n".join(lines))
        report = write_report(store, config.version, audit, funnel, settings, cfg.s3,
                              out_prefix=staging.key(layout.QUALITY))
    try:
        summary = build_release(store, config.version, keys, provenance, settings, allow_tiny=config.allow_tiny,
                                staging=staging, lease_s=cfg.release.publish_lease_seconds)
    except ReleaseError as exc:  # lost the version to another run: this run's staging is gone
        discard(staging)
        raise dg.Failure(description=str(exc)) from None
    yield dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(config.version),
            "release_uri": dg.MetadataValue.path(store.uri(f"release/{config.version}")),
            "profile": dg.MetadataValue.text(provenance.get("profile", "")),
            "summary": dg.MetadataValue.json(summary),
            "quality_report": dg.MetadataValue.url(store.uri(f"{layout.release_quality_prefix(config.version)}/index.html")),
            "quality_summary": dg.MetadataValue.md(report.summary_markdown),
        }
    )
