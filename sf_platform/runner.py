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


def run_pipeline(
    config_path: str,
    cfg,
    release_version: str | None = None,
    allow_tiny: bool = False,
    force: bool = False,
    only_sources: list[str] | None = None,
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
    shard_job = defs.resolve_job_def("process_shard")
    instance.add_dynamic_partitions("sources", [s.name for s in selected])
    for src in selected:
        echo(f"[index] {src.name} ({src.format})")
        res = index_job.execute_in_process(partition_key=src.name, instance=instance, raise_on_error=False)
        if not res.success:
            result.failed.append(f"index:{src.name}")
            continue
        summary = load_index_summary(store, src.name)
        keys = [f"{src.name}/{shard}" for shard in sorted(summary.shards)]
        instance.add_dynamic_partitions("shards", keys)
        echo(f"[index] {src.name}: {summary.num_images} images, {summary.num_objects} objects, "
             f"{len(keys)} shards")
        last = {} if force else _last_shard_hashes(instance, keys)
        complete = set() if force else _complete(instance, keys)
        for key in keys:
            shard = key.rsplit("/", 1)[1]
            if key in complete and last.get(key) == summary.shards[shard]:
                result.shards_skipped.append(key)
                continue
            echo(f"[shard] {key}")
            res = shard_job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
            (result.shards_run if res.success else result.failed).append(key)
            if not res.success:
                echo(f"[shard] {key} FAILED: {_failure_message(res)}")
    if result.shards_skipped:
        echo(f"[shard] skipped {len(result.shards_skipped)} unchanged shard(s)")
    if release_version and not result.failed:
        echo(f"[release] {release_version}")
        res = defs.resolve_job_def("publish_release").execute_in_process(
            instance=instance,
            run_config={"ops": {"release": {"config": {"version": release_version, "allow_tiny": allow_tiny}}}},
            raise_on_error=False,
        )
        if res.success:
            result.release = release_version
        else:
            result.failed.append(f"release:{release_version}")
            echo(f"[release] FAILED: {_failure_message(res)}")
    return result


def _failure_message(res) -> str:
    for event in res.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = event.step_failure_data.error
            return f"{event.step_key}: {err.message.strip()}"
    return "see the run in the Dagster UI"
