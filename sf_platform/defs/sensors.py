"""Unattended operation: the regeneration sensor and the release schedule.

- ``regeneration_sensor`` re-indexes sources whose annotation files changed, then asks the one
  planner (``defs/regeneration.py``: Dagster's own stale/missing status) which shard assets
  are out of date, and requests runs of up to 16 shards for them.  A changed template, a new
  model id, a new or changed shard: all reach it the same way, and so the same runs as
  ``sf-platform run`` would make.
- ``nightly_release`` cuts a new, distinct release (``v2026.12.01``, ``.2`` on a second one
  that day) when a QA partition was materialized since the last release, and skips otherwise.
"""


import dagster as dg
from dagster._core.definitions.data_version import extract_data_version_from_entry

from sf_platform.config import Config
from sf_platform.core.release_versions import next_release_version
from sf_platform.core.schemas import TASKS
from sf_platform.core.sources.index import load_index_summary, source_fingerprint
from sf_platform.core.versions import content_hash
from sf_platform.defs.jobs import index_job, release_job, shard_job
from sf_platform.defs.partitions import shards, sources, split_shard_key
from sf_platform.defs.regeneration import plan, shard_runs
from sf_platform.defs.resources import PlatformResource
from sf_platform.storage.layout import release_prefix


def sources_to_index(cfg: Config, store) -> dict[str, str]:
    """source -> current fingerprint, for sources never indexed or whose files changed."""
    out = {}
    for s in cfg.sources:
        fingerprint = source_fingerprint(s, cfg.s3)
        summary = load_index_summary(store, s.name)
        if summary is None or summary.fingerprint != fingerprint:
            out[s.name] = fingerprint
    return out


def shard_job_assets(job_def: dg.JobDefinition) -> list[dg.AssetKey]:
    """The assets ``process_shard`` materializes (what the planner decides about)."""
    return sorted(job_def.asset_layer.selected_asset_keys)


@dg.sensor(jobs=[shard_job, index_job], minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Re-indexes sources whose files changed, then runs every shard asset "
           "Dagster reports stale or missing (and what lies downstream of it), 16 shards a run.")
def regeneration_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    cfg = platform.load()
    reindex = sources_to_index(cfg, platform.store())
    known = set(context.instance.get_dynamic_partitions(sources.name))
    new_sources = [s.name for s in cfg.sources if s.name not in known]
    requests = [dg.RunRequest(run_key=f"index:{name}:{fp}", partition_key=name, job_name=index_job.name)
                for name, fp in sorted(reindex.items())]
    ready = {s.name for s in cfg.sources} - set(reindex)
    keys = [k for k in context.instance.get_dynamic_partitions(shards.name)
            if split_shard_key(k)[0] in ready]
    graph = context.repository_def.asset_graph
    assets = shard_job_assets(context.repository_def.get_job(shard_job.name))
    decided = plan(context.instance, graph, keys, assets)
    for run in shard_runs(decided, keys):
        # The key changes with the code versions and the shard contents, so a later change
        # to the same shards is requested again, while an unchanged plan is not re-requested.
        versions = [graph.get(dg.AssetKey.from_user_string(a)).code_version for a in run.assets]
        run_key = "shards:" + content_hash(run.assets, run.keys, versions, _content_versions(context, run.keys))
        requests.append(run.run_request(shard_job.name, run_key=run_key))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[sources.build_add_request(new_sources)] if new_sources else [],
    )


def _content_versions(context, keys) -> list[str | None]:
    """The observed content hash of each shard (what ``source_index`` recorded)."""
    out = []
    for key in keys:
        rec = context.instance.get_latest_data_version_record(dg.AssetKey("shard_content"), True, key)
        version = extract_data_version_from_entry(rec.event_log_entry) if rec else None
        out.append(version.value if version else None)
    return out


def qa_changed_since_last_release(instance: dg.DagsterInstance) -> tuple[bool, str | None]:
    """(any QA partition materialized after the latest release?, that release's version)."""
    records = instance.fetch_materializations(dg.AssetKey("release"), limit=1).records
    last = records[0] if records else None
    after = last.storage_id if last else None
    version = None
    if last and last.asset_materialization:
        meta = last.asset_materialization.metadata.get("version")
        version = getattr(meta, "value", meta)
    for task in TASKS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(f"qa_{task}"), after_storage_id=after), limit=1
        ).records
        if records:
            return True, version
    return False, version


def build_release_schedule(cfg: Config) -> dg.ScheduleDefinition:
    settings = cfg.release

    @dg.schedule(name="nightly_release", job=release_job, cron_schedule=settings.schedule_cron,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description="Cuts a new date-named release when QA changed since the last one.")
    def nightly_release(context: dg.ScheduleEvaluationContext, platform: PlatformResource):
        changed, last = qa_changed_since_last_release(context.instance)
        if not changed:
            return dg.SkipReason(f"no QA partition changed since release {last or '(none)'}")
        store = platform.store()
        version = next_release_version(settings.version_format, context.scheduled_execution_time,
                                       lambda v: store.exists(f"{release_prefix(v)}/manifest.json"))
        return dg.RunRequest(run_key=version, run_config={"ops": {"release": {"config": {
            "version": version, "allow_tiny": settings.allow_tiny}}}})

    return nightly_release
