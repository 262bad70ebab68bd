"""The release's task mix: per-task quotas or target shares, sampled by ``qa_id`` hash.

``release.mix`` in config asks for either

- ``quotas``: rows per task (a task not named keeps all its rows), e.g. SpatialForge-10M's
  3.6M / 3.6M / 495k / 2.6M / 93k / 8k; or
- ``shares``: each task's share of the release (tasks not named are left out), with an
  optional ``total``; without it the release is the largest one the available rows allow at
  exactly those shares.

A task with fewer rows than asked delivers all it has; the card shows asked against delivered.

Sampling is deterministic and keeps the balance the QA stage built: rows are grouped into
*strata* (template, and the answer or answer order that the balance rules equalize: yes/no,
the polarity word, the count, whether the first-mentioned object is the answer), each stratum
keeps the same fraction of its rows (largest remainders, so within one row of exact), and
inside a stratum the rows with the smallest ``blake2b(qa_id)`` are kept.  So answer and
position shares after sampling equal those before up to one row per stratum, and the same
store and config always give the same rows.  The plan is made in one pass over a few
columns; applying it is a per-row test, so shards are filtered one at a time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sf_platform.core.qa.templates import BY_ID
from sf_platform.core.schemas import TASKS

PLAN_COLUMNS = ["qa_id", "template_id", "answer", "objects", "fact"]


class TaskMix(BaseModel):
    """``release.mix``: quotas or shares (not both)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quotas: dict[str, int] | None = None
    shares: dict[str, float] | None = None
    total: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> TaskMix:
        if (self.quotas is None) == (self.shares is None):
            raise ValueError("give either 'quotas' or 'shares'")
        named = dict(self.quotas or self.shares)
        unknown = sorted(set(named) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; known: {list(TASKS)}")
        if any(v < 0 for v in named.values()):
            raise ValueError("quotas and shares must be >= 0")
        if self.shares is not None and not math.isclose(sum(self.shares.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"shares must sum to 1, got {sum(self.shares.values()):.6f}")
        if self.quotas is not None and self.total is not None:
            raise ValueError("'total' goes with 'shares'")
        return self

    def asked(self, available: dict[str, int]) -> dict[str, int]:
        """Rows asked per task, given the rows available per task."""
        if self.quotas is not None:
            return {t: int(self.quotas.get(t, available.get(t, 0))) for t in available}
        shares = self.shares or {}
        total = self.total
        if total is None:  # the largest release with exactly these shares
            fits = [available.get(t, 0) / s for t, s in shares.items() if s > 0]
            total = math.floor(min(fits) + 1e-9) if fits else 0
        return {t: round(shares.get(t, 0.0) * total) for t in available}


def qa_hash(qa_ids) -> np.ndarray:
    """uint64 sampling priority of each qa_id (stable across machines and Python versions)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(q.encode(), digest_size=8).digest(), "little") for q in qa_ids),
        dtype=np.uint64, count=len(qa_ids))


def _first_object_ids(objects: pa.Array, n: int) -> list:
    """The first mentioned object id of each row (None for a row mentioning none, as a
    conditional count of 0 does)."""
    out: list = [None] * n
    if n:
        head = pc.list_slice(objects, 0, 1)
        for i, v in zip(pc.list_parent_indices(head).to_pylist(),
                        pc.list_flatten(head).field("object_id").to_pylist()):
            out[i] = v
    return out


def strata(table: pa.Table) -> np.ndarray:
    """Balance stratum of each row (see the module docstring)."""
    tids = table.column("template_id").to_pylist()
    answers = table.column("answer").to_pylist()
    n = table.num_rows
    first = _first_object_ids(table.column("objects").combine_chunks(), n)
    subject = table.column("fact").combine_chunks().field("subject").to_pylist() if n else []
    out = []
    for i, tid in enumerate(tids):
        kind = BY_ID[tid].kind if tid in BY_ID else ""
        ans = answers[i] if kind in ("yesno", "word", "count") else ""
        order = str(first[i] == subject[i]) if kind == "choice" else ""
        out.append(f"{tid}|{ans}|{order}")
    return np.asarray(out, dtype=object)


def _allocate(sizes: dict[str, int], keep: int) -> dict[str, int]:
    """Split ``keep`` rows over strata in proportion to their sizes (largest remainders)."""
    total = sum(sizes.values())
    if keep >= total:
        return dict(sizes)
    quota = {s: keep * n / total for s, n in sizes.items()}
    out = {s: math.floor(q) for s, q in quota.items()}
    rest = keep - sum(out.values())
    for s in sorted(sizes, key=lambda s: (-(quota[s] - out[s]), s))[:rest]:
        out[s] += 1
    return out


@dataclass
class MixPlan:
    """Which rows each task keeps: per stratum, the largest kept hash (None: keep none).
    A task absent from ``cutoffs`` keeps every row."""

    asked: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, dict[str, int | None]] = field(default_factory=dict)

    def apply(self, task: str, table: pa.Table) -> pa.Table:
        cut = self.cutoffs.get(task)
        if cut is None or table.num_rows == 0:
            return table
        h = qa_hash(table.column("qa_id").to_pylist())
        limit = np.asarray([cut.get(s) if cut.get(s) is not None else -1 for s in strata(table)],
                           dtype=object)
        keep = np.asarray([lim >= 0 and int(x) <= lim for x, lim in zip(h, limit)], dtype=bool)
        return table.filter(pa.array(keep))

    def summary(self) -> dict:
        return {"asked": self.asked, "available": self.available, "delivered": self.delivered}


def plan_mix(mix: TaskMix | None, tables_by_task: dict[str, list]) -> MixPlan:
    """Make the plan from each task's tables (or callables returning them, loaded one at a
    time with :data:`PLAN_COLUMNS`)."""
    plan = MixPlan()
    per_task: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for task, tables in tables_by_task.items():
        hs, ss = [], []
        for t in tables:
            t = t() if callable(t) else t
            if mix is not None:
                hs.append(qa_hash(t.column("qa_id").to_pylist()))
                ss.append(strata(t))
            plan.available[task] = plan.available.get(task, 0) + t.num_rows
        plan.available.setdefault(task, 0)
        if mix is not None:
            per_task[task] = (np.concatenate(hs) if hs else np.zeros(0, np.uint64),
                              np.concatenate(ss) if ss else np.zeros(0, object))
    plan.asked = mix.asked(plan.available) if mix else dict(plan.available)
    for task, avail in plan.available.items():
        plan.delivered[task] = min(avail, plan.asked.get(task, avail))
        if mix is None or plan.delivered[task] >= avail:
            continue
        h, s = per_task[task]
        names, inv, sizes = np.unique(s.astype(str), return_inverse=True, return_counts=True)
        alloc = _allocate({str(k): int(n) for k, n in zip(names, sizes)}, plan.delivered[task])
        cut: dict[str, int | None] = {}
        for i, name in enumerate(names):
            k = alloc[str(name)]
            cut[str(name)] = int(np.sort(h[inv == i])[k - 1]) if k > 0 else None
        plan.cutoffs[task] = cut
    return plan
