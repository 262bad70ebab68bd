"""Deterministic balancing: per-image caps, category shares, count histograms, answer balance.

Every choice here is a pure function of per-row *priorities* (uint64 hashes of the pair's
content, see :mod:`ids`), never of a global RNG or of the input order, so a shard's QA table is
byte-identical wherever and in whatever order it is produced.

How each balance rule is met:

- Answer balance (yes/no, first-mentioned-correct, left/right, closer/farther) is *assigned*,
  not sampled: rows of one answer kind are ranked by priority and rank parity decides the
  answer/order (``rank % 2``) and the asked direction (``rank // 2 % 2``).  Within a shard each
  share is then 1/2 up to one row per group (two for the asked direction), i.e. inside the
  default band 0.45-0.55 as soon as a group has 10 rows; a tiny shard (a 3-row group is
  2:1) can miss the band and is reported as such by :func:`balance_report` -- the release's
  totals are balanced to within a few rows per shard.
- When an answer is fixed by geometry (perspective: an object *is* on the person's left),
  the surplus of the majority answer is moved to the yes/no phrasing, where the asked side
  can be chosen (:func:`surplus`).
- Category share: :func:`category_cap` keeps, per category, its top-``m`` rows with the largest
  ``m`` such that no category exceeds ``max_category_share`` of what is kept.  When a shard
  has fewer than ``ceil(1/max_category_share)`` categories the share is unattainable without
  emptying the shard; then nothing is dropped and the report says ``attainable: False``.
- Count histogram: :func:`histogram_cap` caps each count's rows at ``count_max_bin_ratio``
  times the median non-empty bin (the median, not the smallest bin, so one rare count in a
  shard does not throw away most of it).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.scene_view import group_starts
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.qa.templates import BY_ID, POLARITY, YES


def rank_within(group: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """0-based rank of each row inside its group, lowest priority value first."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    o = np.lexsort((np.arange(n), priority, group))
    starts = group_starts(group[o])
    r = np.empty(n, dtype=np.int64)
    r[o] = np.arange(n) - np.repeat(starts[:-1], np.diff(starts))
    return r


def cap_per_group(group: np.ndarray, priority: np.ndarray, cap: int) -> np.ndarray:
    """Keep the ``cap`` best rows of each group."""
    return rank_within(group, priority) < cap


def category_limit(counts: np.ndarray, max_share: float) -> int | None:
    """Largest per-category cap ``m`` with ``m <= max_share * sum(min(n_c, m))``.

    None when no cap is needed (already within the share) or none is attainable (too few
    categories: even equal shares would exceed ``max_share``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    counts = counts[counts > 0]
    total = counts.sum()
    if total == 0 or counts.max() <= max_share * total + 1e-9:
        return None
    if len(counts) < math.ceil(1.0 / max_share - 1e-9):
        return None
    lo, hi = 1, int(counts.max())  # f(m) = share*T(m) - m is concave, f(1) >= 0 here
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid <= max_share * np.minimum(counts, mid).sum() + 1e-9:
            lo = mid
        else:
            hi = mid - 1
    return lo


def category_cap(category: np.ndarray, priority: np.ndarray, max_share: float) -> np.ndarray:
    """Rows kept so that no category exceeds ``max_share`` (see :func:`category_limit`)."""
    if len(category) == 0:
        return np.zeros(0, dtype=bool)
    _, inv, counts = np.unique(category, return_inverse=True, return_counts=True)
    m = category_limit(counts, max_share)
    if m is None:
        return np.ones(len(category), dtype=bool)
    return cap_per_group(inv, priority, m)


def histogram_cap(bins: np.ndarray, priority: np.ndarray, max_ratio: float) -> np.ndarray:
    """Rows kept so no bin exceeds ``max_ratio`` x the median non-empty bin."""
    if len(bins) == 0:
        return np.zeros(0, dtype=bool)
    _, inv, counts = np.unique(bins, return_inverse=True, return_counts=True)
    limit = max(1, math.floor(max_ratio * float(np.median(counts))))
    return cap_per_group(inv, priority, limit)


def surplus(flag: np.ndarray, priority: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Rows of the majority value to move elsewhere so the True-share falls inside ``band``.

    Returns a mask of the lowest-priority majority rows that must go; the rest has
    ``lo <= share <= hi`` (or is empty when one value is absent).
    """
    flag = np.asarray(flag, dtype=bool)
    out = np.zeros(len(flag), dtype=bool)
    n_t, n_f = int(flag.sum()), int((~flag).sum())
    if n_t + n_f == 0:
        return out
    hi = band[1]
    major, minor = (flag, n_f) if n_t >= n_f else (~flag, n_t)
    allowed = math.floor(minor * hi / (1.0 - hi) + 1e-9)
    idx = np.flatnonzero(major)
    if len(idx) <= allowed:
        return out
    keep_rank = rank_within(np.zeros(len(idx), dtype=np.int64), priority[idx])
    out[idx[keep_rank >= allowed]] = True
    return out


# -- the report ------------------------------------------------------------------------------
def _share(flags: np.ndarray, band) -> dict:
    k = len(flags)
    share = float(flags.mean()) if k else None
    return {
        "rows": k,
        "share": share,
        "within_band": None if share is None else bool(band[0] - 1e-9 <= share <= band[1] + 1e-9),
    }


def _subject_categories(qa: pa.Table) -> np.ndarray:
    """Per row, the category of the fact's subject (the counted category for counting)."""
    n = qa.num_rows
    fact = qa.column("fact").combine_chunks()
    subject = fact.field("subject")
    pred = fact.field("predicate")
    objs = qa.column("objects").combine_chunks()
    flat = objs.flatten()
    parent = pc.list_parent_indices(objs).to_numpy()
    match = pc.equal(flat.field("object_id"), subject.take(pa.array(parent))).to_numpy(
        zero_copy_only=False
    )
    match = np.asarray(pd_fill(match), dtype=bool)
    cats = np.asarray(flat.field("category").to_numpy(zero_copy_only=False), dtype=object)
    out = np.asarray(subject.to_numpy(zero_copy_only=False), dtype=object).copy()
    preds = np.asarray(pred.to_numpy(zero_copy_only=False), dtype=object)
    # counting and conditional counting ("count_left_of", ...) are about a category
    by_subject = np.isin(preds, ["all_bbox_1000"]) | np.char.startswith(preds.astype(str), "count")
    hit = np.full(n, -1, dtype=np.int64)
    rows = parent[match][::-1]
    hit[rows] = np.flatnonzero(match)[::-1]  # first match per row wins
    named = (~by_subject) & (hit >= 0)
    out[named] = cats[hit[named]]
    out[(~by_subject) & (hit < 0)] = None
    return out


def pd_fill(values) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    arr[np.equal(arr, None)] = False
    return arr


def balance_report(qa: pa.Table, settings: QASettings | None = None) -> dict:
    """Balance figures of a QA table (one task or several), with within-band flags.

    Keys: ``rows``; ``yes_no`` (share of "Yes."), ``first_mentioned_correct`` (two-object
    choice questions whose correct object is mentioned first), ``polarity`` per axis (share
    of the positive direction: closer / camera-left / person's left / in front), ``category``
    (largest share of one subject category within one task, and whether the limit is
    attainable), ``count_histogram`` (counting answers).
    """
    s = settings or QASettings()
    band = s.balance_band
    n = qa.num_rows
    tids = qa.column("template_id").to_pylist()
    unknown = sorted({t for t in tids if t not in BY_ID})
    if unknown:
        raise ValueError(f"balance_report: unknown template ids {unknown[:5]}")
    tpl = [BY_ID[t] for t in tids]
    kind = np.asarray([t.kind for t in tpl], dtype=object)
    answers = np.asarray(qa.column("answer").to_pylist(), dtype=object)
    fact = qa.column("fact").combine_chunks() if n else None
    report: dict = {"rows": n, "band": list(band)}
    yes_rows = kind == "yesno"
    report["yes_no"] = _share(answers[yes_rows] == YES, band)
    choice = np.flatnonzero(kind == "choice")
    if len(choice):
        subj = np.asarray(fact.field("subject").to_pylist(), dtype=object)
        obj = np.asarray(fact.field("object").to_pylist(), dtype=object)
        first = np.asarray(
            pc.list_element(qa.column("objects").combine_chunks().take(pa.array(choice)), 0)
            .field("object_id")
            .to_pylist(),
            dtype=object,
        )
        asks_pos = np.asarray([tpl[i].asks == "positive" for i in choice])
        correct = np.where(asks_pos, subj[choice], obj[choice])
        report["first_mentioned_correct"] = _share(first == correct, band)
    else:
        report["first_mentioned_correct"] = _share(np.zeros(0, bool), band)
    polarity = {}
    for axis, (pos, _neg) in POLARITY.items():
        rows = [i for i, t in enumerate(tpl) if t.axis == axis]
        if not rows:
            continue
        flags = np.asarray(
            [
                (answers[i] == tpl[i].answers[0])
                if tpl[i].kind == "word"
                else tpl[i].asks == "positive"
                for i in rows
            ]
        )
        polarity[axis] = {"positive": pos, **_share(flags, band)}
    report["polarity"] = polarity
    report["category"] = _category_report(qa, s)
    counting = np.flatnonzero(kind == "count")
    if len(counting):
        vals, cnt = np.unique(answers[counting].astype(str), return_counts=True)
        report["count_histogram"] = {
            str(v): int(c) for v, c in sorted(zip(vals, cnt), key=lambda x: int(x[0]))
        }
    return report


def _category_report(qa: pa.Table, s: QASettings) -> dict:
    if qa.num_rows == 0:
        return {
            "max_share": None,
            "top": None,
            "task": None,
            "attainable": None,
            "within_limit": None,
        }
    cats = _subject_categories(qa)
    tasks = np.asarray(qa.column("task").to_pylist(), dtype=object)
    worst = (-1.0, None, None, True)
    for task in sorted(set(tasks)):
        c = cats[tasks == task]
        vals, cnt = np.unique(c.astype(str), return_counts=True)
        share = cnt.max() / cnt.sum()
        attainable = len(vals) >= math.ceil(1.0 / s.max_category_share - 1e-9)
        if share > worst[0]:
            worst = (float(share), str(vals[np.argmax(cnt)]), task, attainable)
    share, top, task, attainable = worst
    return {
        "max_share": share,
        "top": top,
        "task": task,
        "attainable": bool(attainable),
        "within_limit": bool(share <= s.max_category_share + 1e-9) if attainable else None,
    }


def select(
    image: np.ndarray, category: np.ndarray, priority: np.ndarray, per_image: int, max_share: float
) -> np.ndarray:
    """Candidate rows kept: at most ``per_image`` per image, then the category share cap.

    The per-image cap comes first so a busy image cannot crowd out others; the category cap
    is applied to what is left, so the final table meets ``max_share`` (when attainable).
    """
    keep = cap_per_group(image, priority, per_image)
    idx = np.flatnonzero(keep)
    out = np.zeros(len(image), dtype=bool)
    out[idx[category_cap(category[idx], priority[idx], max_share)]] = True
    return out
