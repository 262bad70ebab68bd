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

from sf_platform.core.licenses import source_terms
from sf_platform.core.near_duplicates import drop_near_duplicates, read_near_duplicates
from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.release import (
    ReleaseError,
    build_release,
    check_can_publish,
    latest_published,
    plan_release_mix,
    read_manifest,
    release_prefix,
)
from sf_platform.core.release_diff import diff_index, diff_markdown, qa_index, release_index
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
    # A published version to compare with (the card and report then say what changed); by
    # default the most recently published one, "" for none.
    previous: str | None = None
    # Publish even when a task shrank against the previous release or most images were
    # quarantined (`--allow-shrink`; also release.allow_shrink in config).
    allow_shrink: bool = False


def _released(store, mix_plan):
    """What the release holds of a task's QA table: near-duplicate images out, the mix applied."""
    near_dups = read_near_duplicates(store)
    return lambda task, table: mix_plan.apply(task, drop_near_duplicates(table, near_dups))


def _changes(store, previous: str | None, keys: dict, select, version: str) -> str:
    """The diff against ``previous`` as markdown (reads the released rows of every task)."""
    if not previous:
        return ""
    old = read_manifest(store, previous)
    tables = {t: select(t, store.read_tables(ks)) for t, ks in keys.items() if ks}
    diff = diff_index(release_index(store, release_prefix(previous), old["files"]), qa_index(tables))
    return diff_markdown(diff, previous, version)


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
    # near_duplicates: the images whose QA the release leaves out (refreshed in the same job).
    deps=[qa_asset_name(t) for t in TASKS] + ["near_duplicates"],
    code_version="1",
    check_specs=[dg.AssetCheckSpec("release_suite", asset="release", blocking=True,
                                   description="All expectation suites over each task's whole table.")],
    description="Parquet per task and split, Qwen-VL/InternVL/LLaVA exports per task, dataset "
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
        previous = latest_published(store, config.version) if config.previous is None else config.previous
        if previous:
            read_manifest(store, previous)
        shrink = check_release_volume(store, config.version, keys, funnel, cfg.release, config.allow_shrink)
    except ReleaseError as exc:
        raise dg.Failure(description=str(exc)) from None
    if shrink:
        context.log.warning("publishing a degraded release (allow_shrink): " + "; ".join(shrink))
    mix_plan = plan_release_mix(store, keys, cfg.release.mix)
    select = _released(store, mix_plan)
    staging = new_staging(store, config.version)
    with audit_release(store, keys, settings, select=select) as audit:
        yield _audit_check(audit)
        if not audit.passed:
            lines = [f"{t}: {o.name} ({o.unexpected_count} rows)" for t, fs in audit.failures().items() for o in fs]
            raise dg.Failure(description=f"release {config.version} not published, audit failed:\n"
                             + "\n".join(lines))
        changes = _changes(store, previous, keys, select, config.version)
        report = write_report(store, config.version, audit, funnel, settings, cfg.s3,
                              out_prefix=staging.key(layout.QUALITY), changes_markdown=changes)
    try:
        summary = build_release(store, config.version, keys, provenance, settings, allow_tiny=config.allow_tiny,
                                sources={s.name: source_terms(s) for s in cfg.sources}, release=cfg.release,
                                mix_plan=mix_plan, previous=previous or None,
                                staging=staging, lease_s=cfg.release.publish_lease_seconds)
    except ReleaseError as exc:  # lost the version to another run: this run's staging is gone
        discard(staging)
        raise dg.Failure(description=str(exc)) from None
    context.log.info(f"release {config.version}: {summary['total']} pairs published")
    yield dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(config.version),
            "release_uri": dg.MetadataValue.path(store.uri(release_prefix(config.version))),
            "profile": dg.MetadataValue.text(provenance.get("profile", "")),
            "summary": dg.MetadataValue.json(summary),
            # The UI renders the summary inline; the full report's path opens in a browser on
            # a machine with the store (presigned links would put key ids in metadata).
            "quality_report": dg.MetadataValue.path(
                store.uri(f"{layout.release_quality_prefix(config.version)}/index.html")),
            "quality_summary": dg.MetadataValue.md(report.summary_markdown),
            "task_mix": dg.MetadataValue.json(mix_plan.summary()),
        }
    )
