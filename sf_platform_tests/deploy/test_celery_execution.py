"""One shard through the whole graph with the Celery executor, on real worker processes.

Two workers, one per queue, share the production instance (``deploy/dagster.yaml`` on a
throwaway PostgreSQL database) with the run.  The event log must show every GPU step executed
by the GPU worker and every other step by the default worker, and the tables must be
identical to an in-process run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from sf_platform.definitions import build_definitions
from sf_platform_tests.deploy.celery_workers import (
    delete_queues,
    start_worker,
    stop_worker,
    wait_ready,
)
from sf_platform_tests.deploy.conftest import REPO
from sf_platform_tests.deploy.shard_source import (
    GPU_STEPS,
    PARTITION,
    make_source,
    register_and_index,
    shard_assets,
    shard_tables,
    write_config,
)

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def celery_setup(tmp_path, production_home, rabbitmq):
    """The Celery config (queues unique to this test) and its two running workers."""
    uid = uuid.uuid4().hex[:8]
    gpu_queue, default_queue = f"sf-gpu-{uid}", f"sf-cpu-{uid}"
    source = make_source(tmp_path)
    config = write_config(tmp_path / "celery" / "sources.yaml", source, tmp_path / "celery" / "store",
                          execution={"executor": "celery", "celery": {
                              "broker": rabbitmq, "gpu_queue": gpu_queue, "default_queue": default_queue}})
    env = dict(os.environ, SF_PLATFORM_CONFIG=str(config), PYTHONPATH=str(REPO))
    workers = {q: start_worker(q, env, REPO, tmp_path / f"{q}.log") for q in (gpu_queue, default_queue)}
    try:
        for w in workers.values():
            wait_ready(w)
        yield {"source": source, "config": config, "env": env,
               "gpu": workers[gpu_queue], "default": workers[default_queue]}
    finally:
        for w in workers.values():
            stop_worker(w)
        delete_queues(rabbitmq, [gpu_queue, default_queue])


def test_gpu_steps_run_on_the_gpu_worker_and_tables_match_in_process(tmp_path, production_home, celery_setup):
    setup = celery_setup
    defs = build_definitions(str(setup["config"]))
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        register_and_index(defs, instance)

    # The run process, as the daemon's run launcher starts it: it submits each step to Celery.
    dagster = str(Path(sys.executable).parent / "dagster")
    proc = subprocess.run(
        [dagster, "job", "execute", "-m", "sf_platform.definitions", "-a", "defs", "-j", "process_shard",
         "--tags", json.dumps({"dagster/partition": PARTITION})],
        cwd=REPO, env=setup["env"], capture_output=True, text=True, timeout=600, check=False)
    logs = {w.queue: w.log.read_text()[-3000:] for w in (setup["gpu"], setup["default"])}
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:] + str(logs)

    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="process_shard"))
        assert run.status == dg.DagsterRunStatus.SUCCESS
        events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]

    submitted = {e.step_key: e.message for e in events
                 if e.event_type == dg.DagsterEventType.ENGINE_EVENT and e.message.startswith("Submitting celery task")}
    executed_by = {e.step_key: e.engine_event_data.metadata["Celery worker"].value for e in events
                   if e.event_type == dg.DagsterEventType.ENGINE_EVENT and e.step_key
                   and "Celery worker" in (e.engine_event_data.metadata or {})}
    start_pid = {e.step_key: e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    success = {e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}

    steps = set(defs.resolve_job_def("process_shard").graph.node_dict)
    assert set(GPU_STEPS) < steps
    assert set(submitted) == set(executed_by) == set(start_pid) == success == steps
    for step in steps:
        worker = setup["gpu"] if step in GPU_STEPS else setup["default"]
        assert f'to queue "{worker.queue}"' in submitted[step], step
        assert executed_by[step] == worker.name, step
        assert start_pid[step] == worker.pid, step
    assert os.getpid() not in start_pid.values()

    # The same partition in process, into another store: every table is identical.
    reference = write_config(tmp_path / "in_process" / "sources.yaml", setup["source"],
                             tmp_path / "in_process" / "store")
    ref_defs = build_definitions(str(reference))
    ref_instance = dg.DagsterInstance.ephemeral()
    register_and_index(ref_defs, ref_instance)
    assert ref_defs.resolve_job_def("process_shard").execute_in_process(
        partition_key=PARTITION, instance=ref_instance).success
    assets = shard_assets(defs)
    ours, theirs = shard_tables(setup["config"], assets), shard_tables(reference, assets)
    for name in assets:
        assert ours[name].num_rows == theirs[name].num_rows, name
        assert ours[name].equals(theirs[name]), name
    assert sum(t.num_rows for t in ours.values()) > 0
