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


def check_results(report) -> list[dg.AssetCheckResult]:
    """One AssetCheckResult per concern; severity ERROR if any ERROR expectation of it failed."""
    grouped: dict[str, list] = {c: [] for c in QA_CHECKS}
    for o in report.outcomes:
        grouped[check_group(o.name)].append(o)
    results = []
    for check, outcomes in grouped.items():
        failed = [o for o in outcomes if not o.success]
        errors = [o for o in failed if o.severity == "ERROR"]
        meta = {
            "expectations": dg.MetadataValue.int(len(outcomes)),
            "failed": dg.MetadataValue.int(len(failed)),
            "failed_expectations": dg.MetadataValue.json(
                {o.name: outcome_metadata(o) for o in failed}
            ),
            "unexpected_rows": dg.MetadataValue.int(sum(o.unexpected_count for o in failed)),
            "results": dg.MetadataValue.json(
                json.loads(json.dumps({o.name: {"success": o.success, "unexpected": o.unexpected_count,
                                                "severity": o.severity} for o in outcomes}, default=str))
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


def audit(context, asset_name: str, table: pa.Table, settings, scene=None, images=None,
          expected_images: int | None = None):
    """Validate ``table`` in memory; yield the check results; raise before anything is written
    when an ERROR expectation failed (write-audit-publish)."""
    from sf_platform.quality.suites import validate_qa

    if expected_images is None and images is not None:
        expected_images = images.num_rows
    task = asset_name.removeprefix("qa_")
    report = validate_qa(table, settings, scene=scene, images=images, expected_images=expected_images,
                         tasks=[task])
    yield from check_results(report)
    if not report.passed:
        failed = [o for o in report.failures() if o.severity == "ERROR"]
        lines = [f"{o.name}: {o.unexpected_count} of {o.element_count} rows" for o in failed]
        raise dg.Failure(
            description=f"{asset_name}: quality gate failed, nothing was written:\n" + "\n".join(lines),
            metadata={
                "failed_expectations": dg.MetadataValue.json(
                    {o.name: outcome_metadata(o) for o in failed}
                )
            },
        )
