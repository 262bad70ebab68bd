"""The source sensor (registers shards of sources that grew) and the release schedule."""


import json

import dagster as dg

from sf_platform.core.growth import parse_cursor, plan_growth
from sf_platform.core.sources.index import load_index_summary, source_fingerprint
from sf_platform.defs.jobs import index_job, release_job, shard_job
from sf_platform.defs.partitions import shards, sources
from sf_platform.defs.resources import PlatformResource


@dg.sensor(jobs=[shard_job, index_job], minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Notices sources whose annotation files changed: re-indexes them, then "
           "registers new shards and runs only new or changed shards.")
def source_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    cfg = platform.load()
    store = platform.store()
    fingerprints = {s.name: source_fingerprint(s, cfg.s3) for s in cfg.sources}
    indexed = {}
    for s in cfg.sources:
        summary = load_index_summary(store, s.name)
        indexed[s.name] = (summary.fingerprint, summary.shards) if summary else None
    plan = plan_growth(fingerprints, indexed, parse_cursor(context.cursor))
    known_sources = set(context.instance.get_dynamic_partitions("sources"))
    new_sources = [s.name for s in cfg.sources if s.name not in known_sources]
    requests = [
        dg.RunRequest(run_key=f"index:{name}:{fingerprints[name]}", partition_key=name, job_name=index_job.name)
        for name in plan.reindex
    ]
    requests += [
        dg.RunRequest(run_key=f"shard:{key}:{plan.digests[key]}", partition_key=key, job_name=shard_job.name)
        for key in plan.shards_to_run
    ]
    partition_requests = []
    if new_sources:
        partition_requests.append(sources.build_add_request(new_sources))
    if plan.new_shards:
        partition_requests.append(shards.build_add_request(plan.new_shards))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps(plan.cursor, sort_keys=True),
    )


release_schedule = dg.ScheduleDefinition(
    name="nightly_release",
    job=release_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-publishes the release from whatever QA partitions passed their checks.",
)
