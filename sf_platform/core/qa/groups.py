"""Vectorised grouping over sorted key arrays: run starts and ids, "the others" of each group.

What the QA generators use to answer per-image and per-category questions for a whole shard
at once (numpy over arrays, no Python loop per object).
"""

from __future__ import annotations

import numpy as np


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Start offsets (plus the end) of runs of equal values in a sorted key array."""
    n = len(keys)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    new = np.r_[True, keys[1:] != keys[:-1]]
    return np.r_[np.flatnonzero(new), n].astype(np.int64)


def group_ids(keys: np.ndarray) -> np.ndarray:
    """Dense run ids (0, 0, 1, 2, 2, ...) of a sorted key array."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1


def others_min(group: np.ndarray, values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each member, the smallest value among the *other* members of its group (inf if none).

    Lets "is this the leftmost chair, and by how much" be decided for every object at once: an
    object is an extreme with a clear margin iff its value beats ``others_min`` by the margin.
    """
    out = np.full(len(values), np.inf)
    idx = np.flatnonzero(member)
    if idx.size == 0:
        return out
    g, v = group[idx], values[idx]
    o = np.lexsort((idx, v, g))
    si, sg, sv = idx[o], g[o], v[o]
    starts = group_starts(sg)[:-1]
    sizes = np.diff(np.r_[starts, len(sg)])
    gid = group_ids(sg)
    first = sv[starts]
    second = np.where(sizes >= 2, sv[np.minimum(starts + 1, len(sv) - 1)], np.inf)
    is_first = np.zeros(len(sg), dtype=bool)
    is_first[starts] = True
    out[si] = np.where(is_first, second[gid], first[gid])
    return out


def others_max(group: np.ndarray, values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Largest value among the other members of each member's group (-inf if none)."""
    return -others_min(group, -np.asarray(values, dtype=np.float64), member)


def expand_ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + k)`` for each (start, size), without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    before = np.cumsum(sizes) - sizes
    return np.repeat(starts - before, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
