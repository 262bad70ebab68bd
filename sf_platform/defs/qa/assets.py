"""QA generation: one partitioned asset per task, audited before it is written.

Write-audit-publish: each asset generates its table in memory, runs the expectation suite on
it, reports the result as a blocking asset check, and only then returns the table to the IO
manager.  A failing ERROR expectation raises, so nothing at the final key changes and
downstream assets (the release) do not run.  Each task has its own ``code_version``: changing
a template re-runs that task only, never the GPU ops.
"""


import dagster as dg
import pyarrow as pa

from sf_platform.core.qa.generate import TASK_CODE_VERSIONS, generate_task
from sf_platform.core.schemas import TASKS
from sf_platform.defs.checks import QA_CHECKS, audit
from sf_platform.defs.partitions import shards
from sf_platform.defs.resources import PlatformResource


def qa_asset_name(task: str) -> str:
    return f"qa_{task}"


def build_qa_asset(task: str) -> dg.AssetsDefinition:
    name = qa_asset_name(task)

    @dg.asset(
        name=name,
        partitions_def=shards,
        group_name="qa",
        code_version=TASK_CODE_VERSIONS[task],
        check_specs=[dg.AssetCheckSpec(c, asset=name, blocking=True) for c in QA_CHECKS],
        description=f"{task} question-answer pairs for one shard (DESIGN.md QA table), "
        "validated before they are written.",
    )
    def _qa(context: dg.AssetExecutionContext, platform: PlatformResource,
            scene: pa.Table, images: pa.Table):
        settings = platform.load().qa
        table = generate_task(task, scene, settings)
        yield from audit(context, name, table, settings, scene=scene, images=images)
        yield dg.Output(table, metadata={"rows": dg.MetadataValue.int(table.num_rows)})

    return _qa


def build_qa_assets() -> list[dg.AssetsDefinition]:
    return [build_qa_asset(t) for t in TASKS]
