"""The value types the expectation suites and their Great Expectations runner share.

Kept apart from both so that :mod:`sf_platform.quality.suites` (which builds the checks and
calls the runner) and :mod:`sf_platform.quality.gx_runner` (which runs them and folds GX's
results back) depend on this module and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "ERROR"
WARN = "WARN"


@dataclass
class ExpectationOutcome:
    name: str
    severity: str  # "ERROR" | "WARN"
    success: bool
    unexpected_count: int
    element_count: int
    observed: dict
    examples: list[dict]  # a few offending rows (qa_id, task, the bad value, question, answer)
    description: str = ""
    skipped: bool = False  # not evaluated (too few rows, no scene/images given)
    docs_page: str | None = None  # its GX Data Docs validation page, relative to data_docs_dir


@dataclass
class Check:
    """One named expectation: what it asserts, its severity, and the GX expectations that test
    it (``(frame, GX class name, kwargs)``; several GX expectations are AND-ed)."""

    name: str
    severity: str
    description: str
    gx: list[tuple[str, str, dict]] = field(default_factory=list)
    skipped_reason: str | None = None
    observed: dict = field(default_factory=dict)
