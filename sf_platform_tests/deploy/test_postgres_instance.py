"""``deploy/dagster.yaml`` as it ships, against this machine's PostgreSQL: a real shard run
stores its runs, events, partitions and the ``gpu`` pool's limit there, and a fresh instance
loaded from the same file reads them back."""

from __future__ import annotations

from contextlib import closing

import dagster as dg
import psycopg2
import pytest
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from sf_platform.definitions import build_definitions
from sf_platform_tests.deploy.conftest import PG_HOST, PG_PORT, PG_USER
from sf_platform_tests.deploy.shard_source import (
    GPU_STEPS,
    PARTITION,
    make_source,
    register_and_index,
    shard_assets,
    write_config,
)

pytestmark = pytest.mark.postgres


def test_production_instance_keeps_runs_events_and_pool_limits_in_postgres(
        tmp_path, production_home, pg_database):
    config = write_config(tmp_path / "sources.yaml", make_source(tmp_path), tmp_path / "store")
    defs = build_definitions(str(config))
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        register_and_index(defs, instance)
        result = defs.resolve_job_def("process_shard").execute_in_process(
            partition_key=PARTITION, instance=instance)
        assert result.success
        run_id = result.run_id

    # A second instance, from the same file: everything comes back from PostgreSQL.
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == PARTITION
        assert instance.get_dynamic_partitions("shards") == [PARTITION]
        for name in shard_assets(defs):
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            assert event is not None and event.run_id == run_id, name
            assert event.asset_materialization.partition == PARTITION, name
        started = {e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}
        assert set(GPU_STEPS) <= started
        # The four model steps took slots of the "gpu" pool; its limit is the file's default.
        assert "gpu" in instance.event_log_storage.get_concurrency_keys()
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}["gpu"] == 1

    # ... and it is this database that holds them, not a file in DAGSTER_HOME.
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=pg_database)
    with closing(conn), conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 50
        cur.execute("SELECT count(*) FROM concurrency_limits WHERE concurrency_key = 'gpu'")
        assert cur.fetchone()[0] == 1
    assert not list(production_home.glob("**/*.db"))
