"""The one regeneration planner: which shard assets must (re)materialize, decided by Dagster.

Dagster already knows when an asset partition is out of date: its code version changed
(templates, thresholds and model ids feed it, see ``core/versions.py``), a dependency has a
new data version (a shard's content hash, observed by ``source_index``), or it was never
materialized. The UI shows exactly that as *stale* and *missing*. This module asks the same
resolver, adds what lies downstream of each out-of-date asset in the shard job (it will change
once its input does), and turns the result into run requests of up to
``MAX_SHARDS_PER_RUN`` contiguous shards that share a selection.  One addition to Dagster's
view: a shard curated while some of its images were missing is re-curated (see
:func:`incomplete_shards`).

The regeneration sensor and ``sf-platform run`` both call :func:`plan` and
:func:`run_requests`; nothing else decides what runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from sf_platform.defs.shard_runs import MAX_SHARDS_PER_RUN

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
OUT_OF_DATE = (StaleStatus.MISSING, StaleStatus.STALE)
CURATED_IMAGES = dg.AssetKey("images")


def _resolver(instance: dg.DagsterInstance, asset_graph) -> CachingStaleStatusResolver:
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=asset_graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=asset_graph, loading_context=view)


def _closure(asset_graph, start: set[dg.AssetKey], within: set[dg.AssetKey]) -> set[dg.AssetKey]:
    """``start``, everything downstream of it inside ``within``, and the assets that must run
    with them (the three outputs of ``curated`` are one step)."""
    out, frontier = set(), set(start)
    while frontier:
        key = frontier.pop()
        if key in out:
            continue
        out.add(key)
        node = asset_graph.get(key)
        frontier |= {k for k in node.execution_set_asset_keys if k in within}
        frontier |= {k for k in node.child_keys if k in within}
    return out


def incomplete_shards(instance: dg.DagsterInstance, partition_keys: list[str]) -> set[str]:
    """Shards whose latest curation found images missing (``curated`` lists them).

    Their content hash covers the annotations, not the files: an image folder that comes
    back (a remount, a late copy) changes nothing Dagster can see, so these shards are
    re-curated on every plan until they are complete.
    """
    seen, out, cursor = set(), set(), None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=CURATED_IMAGES, asset_partitions=partition_keys),
            limit=1000, cursor=cursor)
        for rec in page.records:  # newest first: the first record of a partition is its latest
            mat = rec.asset_materialization
            if mat is None or mat.partition in seen:
                continue
            seen.add(mat.partition)
            listed = mat.metadata.get("incomplete_shards")
            if mat.partition in (getattr(listed, "value", None) or []):
                out.add(mat.partition)
        if not page.has_more:
            return out
        cursor = page.cursor


def plan(instance: dg.DagsterInstance, asset_graph, partition_keys: Iterable[str],
         assets: Iterable[dg.AssetKey]) -> dict[str, frozenset[str]]:
    """partition -> names of ``assets`` to materialize for it (empty: up to date)."""
    within = set(assets)
    keys = list(partition_keys)
    resolver = _resolver(instance, asset_graph)
    retry = incomplete_shards(instance, keys) if CURATED_IMAGES in within else set()
    out = {}
    for pk in keys:
        todo = {a for a in within if resolver.get_status(a, pk) in OUT_OF_DATE}
        if pk in retry:
            todo.add(CURATED_IMAGES)
        out[pk] = frozenset(k.to_user_string() for k in _closure(asset_graph, todo, within))
    return out


@dataclass(frozen=True)
class ShardRun:
    """One run: these assets over the contiguous shards ``keys`` (first..last)."""

    assets: tuple[str, ...]
    keys: tuple[str, ...]

    @property
    def tags(self) -> dict[str, str]:
        if len(self.keys) == 1:
            return {}
        return {RANGE_START: self.keys[0], RANGE_END: self.keys[-1]}

    @property
    def partition_key(self) -> str | None:
        return self.keys[0] if len(self.keys) == 1 else None

    def run_request(self, job_name: str, run_key: str | None = None) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=run_key,
            job_name=job_name,
            partition_key=self.partition_key,
            asset_selection=[dg.AssetKey.from_user_string(a) for a in self.assets],
            tags=self.tags,
        )


def shard_runs(plan_: dict[str, frozenset[str]], ordered_keys: Sequence[str],
               max_per_run: int = MAX_SHARDS_PER_RUN) -> list[ShardRun]:
    """Group shards with the same selection into runs of contiguous shards.

    A run over a range covers every shard between its first and last key in the partition
    order, so a run only spans shards that are adjacent in ``ordered_keys`` and share one
    selection; at most ``max_per_run`` of them.
    """
    runs: list[ShardRun] = []
    current: list[str] = []
    selection: frozenset[str] | None = None

    def close():
        if current:
            runs.append(ShardRun(tuple(sorted(selection)), tuple(current)))

    for key in ordered_keys:
        names = plan_.get(key, frozenset())
        if not names or names != selection or len(current) >= max_per_run:
            close()
            current, selection = [], None
        if names:
            current.append(key)
            selection = names
    close()
    return runs
