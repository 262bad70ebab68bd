"""Which assets of one shard must run again: the logic behind ``sf-platform run``'s skipping.

Pure function over plain values (the runner reads them from the Dagster instance), so it is
tested without Dagster.  An asset of a shard is up to date when its latest materialization

- exists,
- was made by the current code (its recorded ``code_version``),
- is newer than the latest curation of the shard (``images``), which itself recorded the
  shard's current content hash;

and everything downstream of an out-of-date asset is out of date too.  So a shard whose
content changed runs whole, a new QA template re-runs that task's table only (never the GPU
ops), and a shard whose QA step failed after curation succeeded is not mistaken for done.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "images"  # curation writes images, objects and quarantine together


@dataclass(frozen=True)
class Materialized:
    storage_id: int  # event-log order: larger is newer
    code_version: str | None
    shard_hash: str | None = None  # recorded by curation only


def assets_to_run(
    latest: dict[str, Materialized | None],
    code_versions: dict[str, str | None],
    children: dict[str, set[str]],
    shard_hash: str,
) -> set[str]:
    """Asset names of this shard to (re)materialize; empty when the shard is up to date."""
    everything = set(code_versions)
    root = latest.get(ROOT)
    if root is None or root.shard_hash != shard_hash or root.code_version != code_versions.get(ROOT):
        return everything
    stale = set()
    for name in everything:
        rec = latest.get(name)
        if rec is None or rec.code_version != code_versions[name] or rec.storage_id < root.storage_id:
            stale.add(name)
    frontier = set(stale)
    while frontier:
        frontier = {c for n in frontier for c in children.get(n, ()) if c in everything} - stale
        stale |= frontier
    return stale
