"""What changed in the sources since the last look: the logic behind the source sensor.

Pure function over plain values so it is tested without Dagster.  The cursor remembers, per
source, the annotation fingerprint it last asked to index and the content hash of every shard
it last asked to process.  Only sources whose files changed are re-indexed, and only shards
that are new or whose content hash changed are re-run: growing a source by appending images
never re-runs its unchanged shards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class GrowthPlan:
    reindex: list[str] = field(default_factory=list)  # source names whose files changed
    new_shards: list[str] = field(default_factory=list)  # "<source>/<shard>" never seen
    changed_shards: list[str] = field(default_factory=list)  # seen, but content differs
    digests: dict[str, str] = field(default_factory=dict)  # "<source>/<shard>" -> content hash
    cursor: dict = field(default_factory=dict)

    @property
    def shards_to_run(self) -> list[str]:
        return sorted(self.new_shards + self.changed_shards)


def parse_cursor(text: str | None) -> dict:
    return json.loads(text) if text else {}


def plan_growth(
    fingerprints: dict[str, str],
    indexed: dict[str, tuple[str, dict[str, str]] | None],
    cursor: dict,
) -> GrowthPlan:
    """Decide what to index and which shards to run.

    ``fingerprints``: source -> current fingerprint of its annotation files.
    ``indexed``: source -> (fingerprint the index was built from, {shard: hash}) or None.
    ``cursor``: the previous call's ``GrowthPlan.cursor``.
    """
    plan = GrowthPlan(cursor={k: dict(v) for k, v in cursor.items()})
    for source, fp in sorted(fingerprints.items()):
        state = plan.cursor.setdefault(source, {"fingerprint": None, "shards": {}})
        index = indexed.get(source)
        if index is None or index[0] != fp:
            # The index is missing or stale: (re)index first; shards follow on a later tick.
            if state.get("requested_fingerprint") != fp:
                plan.reindex.append(source)
                state["requested_fingerprint"] = fp
            continue
        state["fingerprint"] = fp
        seen = dict(state.get("shards", {}))
        for shard, digest in sorted(index[1].items()):
            key = f"{source}/{shard}"
            plan.digests[key] = digest
            if shard not in seen:
                plan.new_shards.append(key)
            elif seen[shard] != digest:
                plan.changed_shards.append(key)
            seen[shard] = digest
        state["shards"] = seen
    return plan
