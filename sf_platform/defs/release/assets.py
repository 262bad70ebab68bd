"""The release: every checked QA partition collected into the published layout of DESIGN.md.

QA partitions exist at their keys only after their blocking checks passed (write-audit-publish
in the QA assets).  The release then audits the collected tables as a whole (balance holds per
task over the whole release, not only per shard) and reports that as its own blocking check
*before* writing anything: a failed audit raises, and nothing under ``release/<version>/``
appears.  The quality report is written next, and ``build_release`` writes the data, exports
and card with ``manifest.json`` last, so a reader that finds the manifest finds a complete,
checked release.
"""

import dagster as dg

from sf_platform.core.licenses import source_terms
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
from sf_platform.core.release_inputs import collect_funnel, collect_provenance, qa_keys_by_task
from sf_platform.core.schemas import TASKS
from sf_platform.defs.checks import outcome_metadata
from sf_platform.defs.qa.assets import qa_asset_name
from sf_platform.defs.resources import PlatformResource


class ReleaseConfig(dg.Config):
    version: str = "v0.1.0"
    allow_tiny: bool = False
    # A published version to compare with (the card and report then say what changed); by
    # default the most recently published one, "" for none.
    previous: str | None = None


def _changes(store, previous: str | None, tables: dict, version: str) -> str:
    if not previous:
        return ""
    old = read_manifest(store, previous)
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
    try:  # refuse a published version or tiny inputs before anything is written
        check_can_publish(store, config.version, provenance, config.allow_tiny)
        previous = latest_published(store, config.version) if config.previous is None else config.previous
        if previous:
            read_manifest(store, previous)
    except ReleaseError as exc:
        raise dg.Failure(description=str(exc)) from None
    mix_plan = plan_release_mix(store, keys, cfg.release.mix)
    with audit_release(store, keys, settings, select=mix_plan.apply) as audit:
        yield _audit_check(audit)
        if not audit.passed:
            lines = [f"{t}: {o.name} ({o.unexpected_count} rows)" for t, fs in audit.failures().items() for o in fs]
            raise dg.Failure(description=f"release {config.version} not published, audit failed:\n"
                             + "\n".join(lines))
        changes = _changes(store, previous, audit.tables, config.version)
        report = write_report(store, config.version, audit, collect_funnel(store), settings, cfg.s3,
                              changes_markdown=changes)
    summary = build_release(store, config.version, keys, provenance, settings, allow_tiny=config.allow_tiny,
                            sources={s.name: source_terms(s) for s in cfg.sources}, release=cfg.release,
                            mix_plan=mix_plan, previous=previous or None)
    yield dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(config.version),
            "release_uri": dg.MetadataValue.path(store.uri(f"release/{config.version}")),
            "profile": dg.MetadataValue.text(provenance.get("profile", "")),
            "summary": dg.MetadataValue.json(summary),
            "quality_report": dg.MetadataValue.url(store.uri(report.index_key)),
            "quality_summary": dg.MetadataValue.md(report.summary_markdown),
            "task_mix": dg.MetadataValue.json(mix_plan.summary()),
        }
    )
