"""Killed and doubled runs, with real processes: nothing wedges the instance.

- A run SIGKILLed in the middle of a model step left its run STARTED and its ``gpu`` pool
  slot claimed, so the next run waited for that slot forever.  Now the next ``sf-platform
  run`` marks the dead run failed, frees its slot, and finishes with tables byte-identical to
  an uninterrupted run.
- Two ``sf-platform run`` on a brand-new ``DAGSTER_HOME`` both created the SQLite schema and
  left two alembic heads.  Now both finish, and the instance still works.
"""

from __future__ import annotations

import os
import signal
import time

import dagster as dg
import pytest

from sf_platform.runner.instance import instance_lock
from sf_platform_tests.faults.cli_runs import start_run, tables, write_config

pytestmark = pytest.mark.faults


def _instance(home):
    """The run's instance, opened under the same lock as ``sf-platform run`` (opening one
    creates its storage: done by two processes at once, that is the race the lock prevents)."""
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with instance_lock(home):
            instance = dg.DagsterInstance.get()
            instance.get_runs(limit=1)
            return instance
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def _wait_for_model_step(home, proc, timeout=600) -> None:
    """Until a run of the shard job has started a GPU-pool step (it holds the slot)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        if (home / "history").exists():
            instance = _instance(home)
            for key in instance.event_log_storage.get_concurrency_keys():
                if instance.event_log_storage.get_concurrency_info(key).claimed_slots:
                    return
        time.sleep(0.5)
    raise AssertionError("no model step started in time")


def test_a_run_killed_in_a_model_step_does_not_block_the_next(tmp_path):
    images = tmp_path / "scenes"
    clean_cfg = write_config(tmp_path, "clean", images)
    clean = start_run(clean_cfg, tmp_path / "clean" / "home")
    out, _ = clean.communicate(timeout=900)
    assert clean.returncode == 0, out

    cfg = write_config(tmp_path, "killed", images)
    home = tmp_path / "killed" / "home"
    proc = start_run(cfg, home)
    _wait_for_model_step(home, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)

    dead = [r for r in _instance(home).get_runs() if r.status == dg.DagsterRunStatus.STARTED]
    assert dead, "the killed run should still look started"

    again = start_run(cfg, home)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    assert f"marked run {dead[0].run_id} failed" in out
    instance = _instance(home)
    assert instance.get_run_by_id(dead[0].run_id).status == dg.DagsterRunStatus.FAILURE
    for key in instance.event_log_storage.get_concurrency_keys():
        assert not instance.event_log_storage.get_concurrency_info(key).claimed_slots
    assert tables(tmp_path / "killed" / "store") == tables(tmp_path / "clean" / "store")


def test_two_runs_on_a_new_home_both_finish_and_the_instance_still_works(tmp_path):
    images = tmp_path / "scenes"
    cfg = write_config(tmp_path, "shared", images)
    home = tmp_path / "shared" / "home"
    first, second = start_run(cfg, home), start_run(cfg, home)
    outs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert first.returncode == 0, outs[0]
    assert second.returncode == 0, outs[1]
    third = start_run(cfg, home)
    out, _ = third.communicate(timeout=900)
    assert third.returncode == 0, out
    assert "[plan] 2 shard(s) up to date, 0 to run" in out
