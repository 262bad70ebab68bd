"""The executor every job of the code location runs with, chosen by ``execution:`` in config.

It is set once, as the location's default executor (``Definitions(executor=...)``), not per
job: runs that automation, backfills or the UI launch use Dagster's implicit asset job, and
they must put GPU steps on GPU workers exactly as ``process_shard`` does.

- ``in_process`` (default): every step in the run's own process, one after another (one
  machine: no per-step subprocess and its seconds of imports; `sf-platform run --workers N`
  runs N runs side by side).
- ``multiprocess``: Dagster's multiprocess executor, a subprocess per step.
- ``celery``: each step is a Celery task; GPU steps carry the ``dagster-celery/queue`` tag
  (``defs/gpu_tags.py``) and go to ``execution.celery.gpu_queue``, the rest to
  ``default_queue``.  Workers: ``celery -A sf_platform.defs.celery_app worker -Q <queue>``.
- ``k8s``: ``k8s_job_executor``; each step is its own Kubernetes Job, and the GPU steps' op
  tags add the GPU limit, memory, node selector and tolerations from ``models.k8s``.
  Needs the instance's ``K8sRunLauncher`` (the Helm chart's, ``deploy/values.yaml``).

``execute_in_process`` and ``dagster.materialize`` always run in one process, whatever is set.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from sf_platform.config import CeleryConfig, ExecutionConfig


def celery_broker_url(celery: CeleryConfig) -> str:
    """The broker URL the workers connect to: from ``broker_env`` when set, else ``broker``."""
    if celery.broker_env is None:
        return celery.broker
    url = os.environ.get(celery.broker_env)
    if not url:
        raise RuntimeError(
            f"execution.celery.broker_env names {celery.broker_env}, which is not set: "
            "export the broker URL in it before starting Celery workers"
        )
    return url


def celery_executor_config(celery: CeleryConfig) -> dict[str, Any]:
    """dagster-celery's executor config for this section.

    A broker in ``broker_env`` is passed as Dagster's ``{"env": NAME}``, so the URL (and its
    password) is read in the run process and never stored with the job or the run.
    """
    broker: Any = {"env": celery.broker_env} if celery.broker_env else celery.broker
    return {
        "broker": broker,
        "backend": celery.backend,
        "config_source": {"task_default_queue": celery.default_queue},
    }


def executor_for(execution: ExecutionConfig) -> dg.ExecutorDefinition:
    """The executor definition for ``execution:`` (dagster-celery/-k8s imported only if used)."""
    kind = execution.executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        if execution.max_concurrent is None:
            return dg.multi_or_in_process_executor
        return dg.multiprocess_executor.configured({"max_concurrent": execution.max_concurrent})
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(execution.celery))
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        config = {} if execution.max_concurrent is None else {"max_concurrent": execution.max_concurrent}
        return k8s_job_executor.configured(config) if config else k8s_job_executor
    raise ValueError(f"unknown executor {kind!r}")  # unreachable: the config is validated
