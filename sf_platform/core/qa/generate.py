"""One shard's scene -> each task's QA table (``schemas.QA``), deterministically.

``generate_task`` is what a Dagster QA asset calls for one (task, partition); it depends only
on the scene table and the settings, so the same shard gives byte-identical tables whatever
the worker, machine or partition order.  ``TASK_CODE_VERSIONS`` is each task's
``code_version``: bump a task's entry when its templates or rules change, and only that
task's QA tables re-materialize.  ``generate_tasks`` shares the sorted scene view between
tasks (the benchmark and any caller that wants several tasks of one shard).
"""

from __future__ import annotations

import pyarrow as pa

from sf_platform.core.qa import (
    conditional_counting,
    counting,
    grounding,
    left_right,
    near_far,
    perspective,
    referring,
)
from sf_platform.core.qa.balance import balance_report
from sf_platform.core.qa.scene_view import SceneView
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.schemas import TASKS

TASK_CODE_VERSIONS: dict[str, str] = {
    "grounding": "grounding-2",
    "referring": "referring-2",
    "counting": "counting-2",
    "near_far": "near_far-2",
    "left_right": "left_right-2",
    "perspective": "perspective-2",
    "conditional_counting": "conditional_counting-1",
}
GENERATORS = {
    "grounding": grounding.generate,
    "referring": referring.generate,
    "counting": counting.generate,
    "near_far": near_far.generate,
    "left_right": left_right.generate,
    "perspective": perspective.generate,
    "conditional_counting": conditional_counting.generate,
}
assert set(GENERATORS) == set(TASKS) == set(TASK_CODE_VERSIONS)

__all__ = ["TASK_CODE_VERSIONS", "balance_report", "generate_task", "generate_tasks"]


def _check_task(task: str) -> None:
    if task not in GENERATORS:
        raise ValueError(f"unknown QA task {task!r}; known tasks: {list(TASKS)}")


def generate_task(task: str, scene: pa.Table, settings: QASettings) -> pa.Table:
    """The QA table of ``task`` for one shard's ``scene`` (rows sorted by qa_id)."""
    _check_task(task)
    return GENERATORS[task](SceneView(scene, settings))


def generate_tasks(scene: pa.Table, settings: QASettings, tasks=TASKS) -> dict[str, pa.Table]:
    """Several tasks of one shard, preparing the scene once."""
    for t in tasks:
        _check_task(t)
    view = SceneView(scene, settings)
    return {t: GENERATORS[t](view) for t in tasks}
