"""Blocking asset checks that carry the expectation suites' numbers into the Dagster UI.

The suites themselves live in :mod:`sf_platform.quality.suites` (pure, no Dagster).  Here each
suite's outcomes are grouped into one check per concern (boxes, answers, balance, identity,
volume) so the UI shows which concern failed, on how many rows, with a few example rows.
"""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa

QA_CHECKS = ("boxes", "answers", "balance", "identity", "volume")


def check_group(outcome_name: str) -> str:
    """Map an expectation's name (``"boxes.x1_lt_x2"``) to its check (``"boxes"``)."""
    head = outcome_name.split(".", 1)[0]
    return head if head in QA_CHECKS else "answers"


def outcome_metadata(outcome) -> dict:
    return {
        "severity": outcome.severity,
        "success": outcome.success,
        "unexpected_count": outcome.unexpected_count,
        "element_count": outcome.element_count,
        "observed": outcome.observed,
        "examples": outcome.examples[:5],
    }


def check_results(reports: dict) -> list[dg.AssetCheckResult]:
    """One AssetCheckResult per concern over every shard's report (``{partition: report}``);
    severity ERROR if any ERROR expectation of it failed on any shard."""
    grouped: dict[str, list] = {c: [] for c in QA_CHECKS}
    for partition, report in sorted(reports.items()):
        for o in report.outcomes:
            grouped[check_group(o.name)].append((partition, o))
    results = []
    for check, outcomes in grouped.items():
        failed = [(p, o) for p, o in outcomes if not o.success]
        errors = [o for _, o in failed if o.severity == "ERROR"]
        meta = {
            "expectations": dg.MetadataValue.int(len({o.name for _, o in outcomes})),
            "failed": dg.MetadataValue.int(len(failed)),
            "failed_expectations": dg.MetadataValue.json(
                {f"{p}: {o.name}": outcome_metadata(o) for p, o in failed}
            ),
            "failed_shards": dg.MetadataValue.json(sorted({p for p, _ in failed})),
            "unexpected_rows": dg.MetadataValue.int(sum(o.unexpected_count for _, o in failed)),
            "results": dg.MetadataValue.json(
                json.loads(json.dumps({f"{p}: {o.name}": {"success": o.success, "unexpected": o.unexpected_count,
                                                          "severity": o.severity} for p, o in outcomes},
                                      default=str))
            ),
        }
        results.append(
            dg.AssetCheckResult(
                check_name=check,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
                metadata=meta,
            )
        )
    return results


def validate_shard(asset_name: str, table: pa.Table, settings, scene=None, images=None):
    """The expectation suite of one shard's QA table, in memory (before anything is written)."""
    from sf_platform.quality.suites import validate_qa

    expected_images = images.num_rows if images is not None else None
    task = asset_name.removeprefix("qa_")
    return validate_qa(table, settings, scene=scene, images=images, expected_images=expected_images,
                       tasks=[task])


def audit(asset_name: str, reports: dict):
    """Yield the check results of every shard's report; raise before anything is written
    when an ERROR expectation failed on any shard (write-audit-publish)."""
    yield from check_results(reports)
    failed = [(p, o) for p, r in sorted(reports.items()) if not r.passed
              for o in r.failures() if o.severity == "ERROR"]
    if failed:
        lines = [f"{p}: {o.name}: {o.unexpected_count} of {o.element_count} rows" for p, o in failed]
        raise dg.Failure(
            description=f"{asset_name}: quality gate failed, nothing was written:\n" + "\n".join(lines),
            metadata={
                "failed_expectations": dg.MetadataValue.json(
                    {f"{p}: {o.name}": outcome_metadata(o) for p, o in failed}
                )
            },
        )
