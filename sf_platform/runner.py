"""Drives the pipeline through the Dagster instance: index, register partitions, run shards, publish.

Used by ``sf-platform run`` and ``sf-platform demo``.  Runs are launched from the code
location's own job definitions (``index_sources``, ``process_shard``, ``publish_release``)
against the instance in ``$DAGSTER_HOME``, so they appear in the UI with their lineage.
Each shard runs only what is out of date (``core/rerun.py``): a shard whose content is
unchanged and whose assets were all made by the current code after its latest curation is
skipped, a changed QA template re-runs that task only, and a grown source runs its new shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from sf_platform.core.rerun import Materialized, assets_to_run


@dataclass
class RunResult:
    shards_run: list[str] = field(default_factory=list)
    shards_skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    release: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def _latest_per_partition(instance: dg.DagsterInstance, asset: str, keys: list[str]) -> dict[str, Materialized]:
    """partition -> its latest materialization of ``asset`` (storage id, code version, hash)."""
    out: dict[str, Materialized] = {}
    cursor = None
    while True:  # newest first, paged, so no partition is crowded out by another's history
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys), limit=1000, cursor=cursor
        )
        for rec in page.records:
            mat = rec.asset_materialization
            if mat is None or mat.partition in out:
                continue
            digest = mat.metadata.get("shard_hash")
            out[mat.partition] = Materialized(
                storage_id=rec.storage_id,
                code_version=mat.tags.get("dagster/code_version") if mat.tags else None,
                shard_hash=getattr(digest, "value", digest),
            )
        if not page.has_more:
            return out
        cursor = page.cursor


def plan_shards(instance: dg.DagsterInstance, defs: dg.Definitions, hashes: dict[str, str],
                force: bool = False) -> dict[str, set[str]]:
    """partition -> asset names of ``process_shard`` it must (re)materialize (see core.rerun)."""
    graph = defs.resolve_asset_graph()
    names = sorted(k.to_user_string() for k in defs.resolve_job_def("process_shard").asset_layer.selected_asset_keys)
    if force:
        return {key: set(names) for key in hashes}
    versions = {n: graph.get(dg.AssetKey(n)).code_version for n in names}
    children = {n: {c.to_user_string() for c in graph.get(dg.AssetKey(n)).child_keys} for n in names}
    keys = sorted(hashes)
    latest = {n: _latest_per_partition(instance, n, keys) for n in names}
    return {
        key: assets_to_run({n: latest[n].get(key) for n in names}, versions, children, hashes[key])
        for key in keys
    }


def _run_shard(config_path: str, key: str, only: list[str] | None = None) -> tuple[str, bool, str]:
    """Run ``process_shard`` for one partition (in this or a worker process); ``only`` limits
    the run to these asset keys (stale assets of an otherwise unchanged shard)."""
    from sf_platform.definitions import build_definitions

    try:
        job = build_definitions(config_path).resolve_job_def("process_shard")
        selection = [dg.AssetKey.from_user_string(k) for k in only] if only else None
        res = job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.get(), raise_on_error=False,
                                     asset_selection=selection)
    except Exception as exc:  # noqa: BLE001 - a broken run is reported as this shard's failure
        return key, False, f"{type(exc).__name__}: {exc}"
    return key, res.success, "" if res.success else _failure_message(res)


def _run_shards(config_path: str, keys: list[str], workers: int, echo,
                only: list[str] | None = None) -> list[tuple[str, bool, str]]:
    """Shards one after another, or ``workers`` at a time in separate processes.

    Each worker is its own Python process (spawned, so no CUDA context is forked) running the
    same code location against the same instance; model steps still take a slot of the ``gpu``
    concurrency pool, so parallel shards share a GPU instead of overloading it.
    """
    if workers <= 1 or len(keys) <= 1:
        out = []
        for key in keys:
            echo(f"[shard] {key}" + (f" ({', '.join(only)})" if only else ""))
            out.append(_run_shard(config_path, key, only))
        return out
    import concurrent.futures as cf
    import multiprocessing as mp

    echo(f"[shard] {len(keys)} shards on {workers} worker processes")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_run_shard, config_path, key, only) for key in keys]
        results = []
        for key, fut in zip(keys, futures):
            try:
                _, ok, message = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed for memory
                ok, message = False, f"{type(exc).__name__}: {exc}"
            echo(f"[shard] {key} {'done' if ok else 'FAILED'}")
            results.append((key, ok, message))
    return sorted(results)


def _group_by_selection(plan: dict[str, set[str]], defs: dg.Definitions) -> dict:
    """selection -> shards: ``None`` = up to date, ``()`` = the whole job, else those assets."""
    everything = {k.to_user_string() for k in defs.resolve_job_def("process_shard").asset_layer.selected_asset_keys}
    groups: dict = {}
    for key, names in sorted(plan.items()):
        selection = None if not names else () if names >= everything else tuple(sorted(names))
        groups.setdefault(selection, []).append(key)
    return groups


def _publish(defs, instance, version: str, allow_tiny: bool) -> tuple[bool, str]:
    res = defs.resolve_job_def("publish_release").execute_in_process(
        instance=instance,
        run_config={"ops": {"release": {"config": {"version": version, "allow_tiny": allow_tiny}}}},
        raise_on_error=False,
    )
    return res.success, "" if res.success else _failure_message(res)


def run_pipeline(
    config_path: str,
    cfg,
    release_version: str | None = None,
    allow_tiny: bool = False,
    force: bool = False,
    only_sources: list[str] | None = None,
    workers: int = 1,
    echo: Callable[[str], None] = print,
) -> RunResult:
    from sf_platform.core.sources.index import load_index_summary
    from sf_platform.definitions import build_definitions
    from sf_platform.storage.object_store import ObjectStore

    defs = build_definitions(config_path)
    instance = dg.DagsterInstance.get()
    store = ObjectStore(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region)
    result = RunResult()
    selected = [s for s in cfg.sources if not only_sources or s.name in only_sources]

    index_job = defs.resolve_job_def("index_sources")
    instance.add_dynamic_partitions("sources", [s.name for s in selected])
    hashes: dict[str, str] = {}
    for src in selected:
        echo(f"[index] {src.name} ({src.format})")
        res = index_job.execute_in_process(partition_key=src.name, instance=instance, raise_on_error=False)
        if not res.success:
            result.failed.append(f"index:{src.name}")
            echo(f"[index] {src.name} FAILED: {_failure_message(res)}")
            continue
        summary = load_index_summary(store, src.name)
        instance.add_dynamic_partitions("shards", [f"{src.name}/{k}" for k in sorted(summary.shards)])
        echo(f"[index] {src.name}: {summary.num_images} images, {summary.num_objects} objects, "
             f"{len(summary.shards)} shards")
        hashes.update({f"{src.name}/{shard}": digest for shard, digest in summary.shards.items()})
    outcomes = []
    for selection, keys in _group_by_selection(plan_shards(instance, defs, hashes, force), defs).items():
        if selection is None:
            result.shards_skipped += keys
            continue
        if selection:
            echo(f"[shard] {len(keys)} shard(s) need only {', '.join(selection)} (code changed or left behind)")
        outcomes += _run_shards(config_path, keys, workers, echo, only=list(selection) or None)
    for key, ok, message in outcomes:
        (result.shards_run if ok else result.failed).append(key)
        if not ok:
            echo(f"[shard] {key} FAILED: {message}")
    if result.shards_skipped:
        echo(f"[shard] skipped {len(result.shards_skipped)} unchanged shard(s)")
    if release_version and not result.failed:
        echo(f"[release] {release_version}")
        ok, message = _publish(defs, instance, release_version, allow_tiny)
        if ok:
            result.release = release_version
        else:
            result.failed.append(f"release:{release_version}")
            echo(f"[release] FAILED: {message}")
    return result


def _failure_message(res) -> str:
    for event in res.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = event.step_failure_data.error
            return f"{event.step_key}: {err.message.strip()}"
    return "see the run in the Dagster UI"
