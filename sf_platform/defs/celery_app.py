"""The Celery app the workers run: ``celery -A sf_platform.defs.celery_app worker -Q <queue>``.

It is dagster-celery's own app (same task name, queues and defaults as the executor that
submits the steps), built with the broker of ``execution.celery`` in the config file named by
``SF_PLATFORM_CONFIG``, so the workers and the run read one setting.  A worker executes each
step it receives against the Dagster instance named in the task (the run's own, so workers
and runs must share it: PostgreSQL, or one ``DAGSTER_HOME`` on one machine), loading the code
location from ``sf_platform.definitions`` with the same ``SF_PLATFORM_CONFIG``.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from sf_platform.defs.executors import celery_broker_url, celery_executor_config
from sf_platform.defs.resources import PlatformResource, current_config_path

_celery = PlatformResource(config_path=current_config_path()).load().execution.celery
_settings = dict(celery_executor_config(_celery), broker=celery_broker_url(_celery))

app = make_app(CeleryExecutor.for_cli(**_settings).app_args())
execute_plan = create_task(app)
