"""Drives the pipeline through the Dagster instance: index, register partitions, run shards, publish.

Used by ``sf-platform run`` and ``sf-platform demo``.  Runs are launched from the code
location's own job definitions (``index_sources``, ``process_shard``, ``publish_release``)
against the instance in ``$DAGSTER_HOME``, so they appear in the UI with their lineage.
A shard whose content hash matches the one its last successful run recorded, and whose QA
tables all exist, is skipped: re-running the command after a source grew processes only the
new shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from sf_platform.core.schemas import TASKS


@dataclass
class RunResult:
    shards_run: list[str] = field(default_factory=list)
    shards_skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    release: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def _last_shard_hashes(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, str]:
    """partition -> shard_hash recorded by the latest successful curation of that shard."""
    if not keys:
        return {}
    out: dict[str, str] = {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("images"), asset_partitions=keys), limit=len(keys) * 4
    ).records
    for rec in records:  # newest first
        mat = rec.asset_materialization
        if mat is None or mat.partition in out:
            continue
        value = mat.metadata.get("shard_hash")
        if value is not None:
            out[mat.partition] = getattr(value, "value", value)
    return out


def _complete(instance: dg.DagsterInstance, keys: list[str]) -> set[str]:
    """Shards whose six QA tables have all been materialized."""
    done = set(keys)
    for task in TASKS:
        done &= instance.get_materialized_partitions(dg.AssetKey(f"qa_{task}"))
    return done


def stale_assets(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[dg.AssetKey]:
    """Shard assets whose code changed since they were last materialized, and what depends on
    them within a shard: a new QA template re-runs that task's table only, never the GPU ops."""
    graph = defs.resolve_asset_graph()
    job_keys = set(defs.resolve_job_def("process_shard").asset_layer.selected_asset_keys)
    latest = instance.get_latest_materialization_code_versions(list(job_keys))
    changed = {k for k in job_keys if latest.get(k) is not None and latest[k] != graph.get(k).code_version}
    stale, frontier = set(changed), set(changed)
    while frontier:
        frontier = {c for k in frontier for c in graph.get(k).child_keys if c in job_keys} - stale
        stale |= frontier
    return sorted(stale, key=lambda k: k.to_user_string())


def _shards_to_run(instance, summary, source: str, force: bool) -> tuple[list[str], list[str]]:
    """(shards to run, shards skipped because their content and QA tables are unchanged)."""
    keys = [f"{source}/{shard}" for shard in sorted(summary.shards)]
    if force:
        return keys, []
    last = _last_shard_hashes(instance, keys)
    complete = _complete(instance, keys)
    run, skipped = [], []
    for key in keys:
        unchanged = key in complete and last.get(key) == summary.shards[key.rsplit("/", 1)[1]]
        (skipped if unchanged else run).append(key)
    return run, skipped


def _run_shard(config_path: str, key: str, only: list[str] | None = None) -> tuple[str, bool, str]:
    """Run ``process_shard`` for one partition (in this or a worker process); ``only`` limits
    the run to these asset keys (stale assets of an otherwise unchanged shard)."""
    from sf_platform.definitions import build_definitions

    job = build_definitions(config_path).resolve_job_def("process_shard")
    selection = [dg.AssetKey.from_user_string(k) for k in only] if only else None
    res = job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.get(), raise_on_error=False,
                                 asset_selection=selection)
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
        for fut in cf.as_completed(futures):
            key, ok, message = fut.result()
            echo(f"[shard] {key} {'done' if ok else 'FAILED'}")
            results.append((key, ok, message))
    return sorted(results)


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
    pending: list[str] = []
    stale = [] if force else [k.to_user_string() for k in stale_assets(instance, defs)]
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
        run, skipped = _shards_to_run(instance, summary, src.name, force)
        pending += run
        result.shards_skipped += skipped
    outcomes = _run_shards(config_path, pending, workers, echo)
    if stale and result.shards_skipped:
        echo(f"[shard] code changed for {', '.join(stale)}: re-running only those on unchanged shards")
        outcomes += _run_shards(config_path, result.shards_skipped, workers, echo, only=stale)
        result.shards_skipped = []
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
