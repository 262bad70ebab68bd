"""The Dagster code location: each domain's definitions merged, bound to the configured store.

The config file comes from ``SF_PLATFORM_CONFIG`` (see ``sf_platform.defs.resources``).
"""

from __future__ import annotations

import dagster as dg

from sf_platform.defs.resources import PlatformResource, current_config_path


def build_definitions(config_path: str | None = None) -> dg.Definitions:
    from sf_platform.defs.executors import executor_for
    from sf_platform.defs.ingest.definitions import defs as ingest_defs
    from sf_platform.defs.jobs import index_job, release_job, shard_job
    from sf_platform.defs.perception.definitions import build_defs as perception_defs
    from sf_platform.defs.qa.definitions import build_defs as qa_defs
    from sf_platform.defs.release.definitions import defs as release_defs
    from sf_platform.defs.sensors import build_release_schedule, regeneration_sensor
    from sf_platform.storage.parquet_io_manager import ParquetIOManager

    platform = PlatformResource(config_path=config_path)
    cfg = platform.load()
    return dg.Definitions.merge(
        ingest_defs,
        perception_defs(cfg),
        qa_defs(cfg),
        release_defs,
        dg.Definitions(
            jobs=[index_job, shard_job, release_job],
            sensors=[regeneration_sensor],
            schedules=[build_release_schedule(cfg)],
            executor=executor_for(cfg.execution),
            resources={
                "platform": platform,
                "io_manager": ParquetIOManager(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region),
            },
        ),
    )


defs = build_definitions(current_config_path())


# Module-level job factories, so a worker process can rebuild the same job by name
# (``dagster.reconstructable``) from the config in ``SF_PLATFORM_CONFIG``.
def index_sources_job():
    return defs.resolve_job_def("index_sources")


def process_shard_job():
    return defs.resolve_job_def("process_shard")


def publish_release_job():
    return defs.resolve_job_def("publish_release")
