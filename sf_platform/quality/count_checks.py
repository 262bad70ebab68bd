"""Checks of the conditional counting task: answers in range, equal to the fact, values balanced.

A conditional count may be 0 (the category is present and every instance clearly fails the
condition, :mod:`core.qa.conditional_counting`), so its range is ``[0, count_cap]`` where plain
counting's is ``[1, count_cap]``.  Its balance signal is the share of each answer value: the
generator caps every value at ``conditional_count_max_value_share`` of a shard's rows once at
least ``ceil(1 / share)`` values occur in it, and this check audits the same number.  It is the
category-share mechanism (a deterministic cap, attainable only with enough distinct values),
so it is checked like ``balance.category_share``: a WARN, skipped under
``suites.CATEGORY_MIN_ROWS`` rows or when the facts hold too few distinct counts -- a release
that joins shards too small to cap may exceed the share, which the report shows and the
publish does not block.
"""

from __future__ import annotations

import math

import numpy as np

from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.derived import DerivedFrames, parse_count

TASK = "conditional_counting"


def count_columns(answers, fact_values) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-row frame columns (parsed answer, parsed fact, the share of the row's answer value)
    and the share of every answer value (what the report shows)."""
    ans = parse_count(answers)
    cols = {"count_answer": ans, "count_fact": parse_count(fact_values)}
    vals, inv, cnt = np.unique(ans, return_inverse=True, return_counts=True)
    cols["value_share"] = (cnt / max(len(ans), 1))[inv]
    shares = {str(int(v)) if v >= 0 else "unparseable": float(c / len(ans)) for v, c in zip(vals, cnt)}
    return cols, shares


def distinct_facts(d: DerivedFrames) -> int:
    """How many count values the facts hold (what decides whether the share cap is attainable)."""
    fact = d.frames[f"task.{TASK}"]["count_fact"].to_numpy()
    return len(np.unique(fact[fact >= 0]))


def conditional_count_checks(d: DerivedFrames, settings: QASettings) -> list:
    from sf_platform.quality.suites import CATEGORY_MIN_ROWS, ERROR, WARN, Check, _between, _skipped

    frame, cap = f"task.{TASK}", settings.count_cap
    rng = f"Conditional counting answers are an integer in [0, count_cap={cap}] equal to fact.value; -1 = not a number."
    eq = "The conditional counting answer equals fact.value."
    limit = settings.conditional_count_max_value_share
    share = (f"No answer value of conditional_counting holds more than conditional_count_max_value_share="
             f"{limit:.2f} of its rows, so the count cannot be guessed from a prior (value = that value's share).")
    names = ("answers.conditional_count_in_range", "answers.conditional_count_equals_fact",
             f"balance.count_value_share.{TASK}")
    if frame not in d.frames or "count_answer" not in d.frames[frame].columns:
        # No rows, or the release-wide pass of a streamed audit (one-row frames of summed
        # figures): these checks are per row and were judged partition by partition.
        return [_skipped(n, sev, desc, "no conditional_counting rows")
                for n, sev, desc in zip(names, (ERROR, ERROR, WARN), (rng, eq, share))]
    shares = d.count_value_shares.get(TASK, {})
    rows = d.task_rows.get(TASK, 0)
    out = [Check(names[0], ERROR, rng, [_between(frame, "count_answer", min_value=0, max_value=cap)]),
           Check(names[1], ERROR, eq, [(frame, "ExpectColumnPairValuesToBeEqual",
                                        {"column_A": "count_answer", "column_B": "count_fact"})])]
    observed = {"rows": rows, "value_shares": {k: round(v, 4) for k, v in shares.items()}}
    if rows < CATEGORY_MIN_ROWS:
        out.append(_skipped(names[2], WARN, share, f"{rows} rows < {CATEGORY_MIN_ROWS}", **observed))
    elif distinct_facts(d) < math.ceil(1.0 / limit - 1e-9):
        out.append(_skipped(names[2], WARN, share, f"only {distinct_facts(d)} distinct counts: share not attainable",
                            **observed))
    else:
        out.append(Check(names[2], WARN, share, [_between(frame, "value_share", max_value=limit + 1e-9)],
                         observed=observed))
    return out
