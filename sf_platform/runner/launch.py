"""Execute one planned run in a worker process, through the job's own executor.

Each run is a Dagster run of the code location's job (``dagster.execute_job`` on the
reconstructable job), with the same asset selection and partition (range) tags the
regeneration sensor would request, so the UI shows it like any other run.  The worker's
stdout and stderr (Dagster's event stream) go to the run log file, not to the terminal.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import dagster as dg

from sf_platform.runner.instance import worker_tags


@dataclass(frozen=True)
class RunOutcome:
    label: str
    ok: bool
    run_id: str | None = None
    cause: str = ""


def redirect_output(log_path: str) -> None:
    """Send this process's stdout/stderr (Dagster's console logger) to ``log_path``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


_JOBS = {
    "index_sources": "index_sources_job",
    "process_shard": "process_shard_job",
    "publish_release": "publish_release_job",
}


def execute(label: str, job_name: str, tags: dict[str, str], assets: list[str] | None = None,
            run_config: dict | None = None) -> RunOutcome:
    """Run ``job_name`` once in this process; report success or the root cause of a failure."""
    import sf_platform.definitions as location

    job = dg.reconstructable(getattr(location, _JOBS[job_name]))
    selection = [dg.AssetKey.from_user_string(a) for a in assets] if assets else None
    try:
        with dg.execute_job(job, instance=dg.DagsterInstance.get(), run_config=run_config or {},
                            tags={**tags, **worker_tags()}, asset_selection=selection,
                            raise_on_error=False) as result:
            return RunOutcome(label, result.success, result.run_id,
                              "" if result.success else failure_cause(result.all_events))
    except Exception as exc:  # noqa: BLE001 - reported as this run's failure, with its cause
        return RunOutcome(label, False, None, f"{type(exc).__name__}: {exc}")


def _root(error):
    """The innermost cause of a serialized error (the user's exception, not Dagster's wrapper)."""
    while error.cause is not None:
        error = error.cause
    return error


def failure_cause(events) -> str:
    """``"<step>: <exception>: <message>"`` of the first failed step, else of the run."""
    for event in events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = _root(event.step_failure_data.error)
            message = err.message.strip().splitlines()
            return f"{event.step_key}: {' '.join(m.strip() for m in message if m.strip())}"
    for event in events:
        if event.is_run_failure and event.message:
            return event.message.strip()
    return "see the run in the Dagster UI"
