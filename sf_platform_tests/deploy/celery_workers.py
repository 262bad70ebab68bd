"""Celery worker processes for the tests: ``celery -A sf_platform.defs.celery_app worker``,
one per queue, each executing one step at a time in its own (main) process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CELERY = str(Path(sys.executable).parent / "celery")
APP = "sf_platform.defs.celery_app"


@dataclass
class Worker:
    name: str  # Celery node name, "<queue>@<host>": what the step's engine event records
    queue: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def start_worker(queue: str, env: dict[str, str], cwd: Path, log: Path) -> Worker:
    """Starts a worker consuming only ``queue``; the solo pool runs each task in the worker's
    own process, one at a time (concurrency 1), so the step's pid is the worker's pid."""
    name = f"{queue}@sf-test"
    out = open(log, "w")  # noqa: SIM115 (closed by the process's end)
    proc = subprocess.Popen(
        [CELERY, "-A", APP, "worker", "-Q", queue, "-n", name, "--pool", "solo",
         "--concurrency", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "INFO"],
        cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Worker(name=name, queue=queue, process=proc, log=log)


def wait_ready(worker: Worker, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker {worker.name} exited:\n{worker.log.read_text()[-4000:]}")
        if " ready." in worker.log.read_text():
            return
        time.sleep(0.5)
    raise TimeoutError(f"worker {worker.name} not ready after {timeout}s:\n{worker.log.read_text()[-4000:]}")


def stop_worker(worker: Worker) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL of the worker's own process group if it hangs."""
    if worker.process.poll() is None:
        os.killpg(worker.process.pid, signal.SIGTERM)
        try:
            worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)


def delete_queues(broker: str, queues: list[str]) -> None:
    """Removes the test's queues from the broker (they are durable and would outlive it)."""
    from kombu import Connection

    with Connection(broker) as conn:
        channel = conn.default_channel
        for q in queues:
            channel.queue_delete(q)
