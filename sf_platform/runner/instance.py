"""The local Dagster instance the CLI drives: opened safely, and cleared of dead runs.

Two things went wrong before this module existed:

- Two ``sf-platform run`` processes on a brand-new ``DAGSTER_HOME`` both created the SQLite
  schema at once and left it with two alembic heads; every later run failed.  Opening the
  instance (which creates and migrates its storage) is now serialized with a file lock in
  ``DAGSTER_HOME``, and a second process finds the schema ready.
- A run killed with SIGKILL stayed STARTED and kept its slot in the ``gpu`` pool, so every
  later run waited forever for that slot.  Runs launched by the CLI carry the host and pid of
  the process that executes them; before planning, runs still marked in progress whose process
  is gone are marked failed and their pool slots freed.  A run of another live process (a
  second ``sf-platform run``) is left alone.  Deployments with a daemon use Dagster's own run
  monitoring instead (``run_monitoring`` in ``dagster.yaml``).
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from sf_platform.storage.lock import pid_alive

HOST_TAG = "sf_platform/host"
PID_TAG = "sf_platform/pid"
IN_PROGRESS = (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


@contextmanager
def instance_lock(home: Path):
    """An exclusive lock on ``<home>/.sf_platform.lock`` (released when the process dies)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".sf_platform.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance at ``home``, its storage created or migrated by one process at a time."""
    os.environ["DAGSTER_HOME"] = str(home)
    with instance_lock(home):
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # touches every storage: creates the schema under the lock
        instance.get_dynamic_partitions("shards")
    return instance


def worker_tags() -> dict[str, str]:
    """Tags naming the process that executes a run (read by :func:`recover_dead_runs`)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose executing process on this host is gone, and free
    the concurrency slots it held.  Returns the run ids it recovered."""
    host = socket.gethostname()
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        tags = run.tags or {}
        if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
            continue
        if pid_alive(int(tags[PID_TAG])):
            continue
        instance.report_run_failed(run, message=f"the process that ran it (pid {tags[PID_TAG]}) is gone; "
                                   "marked failed by sf-platform before the next run")
        recovered.append(run.run_id)
    for run_id in recovered + _finished_runs_holding_slots(instance):
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return recovered


def _finished_runs_holding_slots(instance: dg.DagsterInstance) -> list[str]:
    """Runs that ended (any way) but still hold a pool slot: a slot is only ever freed by the
    run itself, so a run killed between claiming and freeing keeps it forever."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = set()
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        holders |= {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
    done = []
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            done.append(run_id)
    return done
