"""QA generation: one partitioned asset per task, audited before it is written.

Write-audit-publish: each asset generates each shard's table in memory, runs the expectation
suite on it, reports the results as blocking asset checks, and only then returns the tables to
the IO manager. A failing ERROR expectation raises, so nothing at the final keys changes and
downstream assets (the release) do not run. Each task has its own ``code_version``, fed by its
templates and the QA thresholds: changing a template re-runs that task only, never the GPU ops.
"""


import dagster as dg
import pyarrow as pa

from sf_platform.core.qa.generate import TASK_CODE_VERSIONS, generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.qa.templates import TEMPLATES
from sf_platform.core.schemas import TASKS
from sf_platform.core.versions import code_version
from sf_platform.defs.checks import QA_CHECKS, audit, validate_shard
from sf_platform.defs.partitions import shards
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.shard_runs import BACKFILL_POLICY, per_shard


def qa_asset_name(task: str) -> str:
    return f"qa_{task}"


# Thresholds read by one task only (generation and checks): changing one re-runs that task
# alone. Every other threshold may be read by several tasks or their checks, so it versions
# them all: a needless re-run costs CPU minutes, a missed one publishes stale pairs.
# ``None``: read by no QA task (near-duplicate grouping is the near_duplicates asset's).
TASK_ONLY_SETTINGS = {
    "count_max_bin_ratio": "counting",
    "conditional_count_max_value_share": "conditional_counting",
    "near_duplicate_max_hamming": None,
}


def qa_code_version(task: str, settings: QASettings) -> str:
    """The task's hand-bumped version, its templates and the thresholds it may read."""
    relevant = {k: v for k, v in settings.model_dump().items() if TASK_ONLY_SETTINGS.get(k, task) == task}
    return code_version(TASK_CODE_VERSIONS[task], TEMPLATES[task], relevant)


def build_qa_asset(task: str, settings: QASettings) -> dg.AssetsDefinition:
    name = qa_asset_name(task)

    @dg.asset(
        name=name,
        partitions_def=shards,
        group_name="qa",
        code_version=qa_code_version(task, settings),
        backfill_policy=BACKFILL_POLICY,
        check_specs=[dg.AssetCheckSpec(c, asset=name, blocking=True) for c in QA_CHECKS],
        description=f"{task} question-answer pairs for one shard (DESIGN.md QA table), "
        "validated before they are written.",
    )
    def _qa(context: dg.AssetExecutionContext, platform: PlatformResource, scene, images):
        cfg_settings = platform.load().qa
        tables: dict[str, pa.Table] = {}
        reports = {}
        for key, inputs in per_shard(context, scene=scene, images=images):
            tables[key] = generate_task(task, inputs["scene"], cfg_settings)
            reports[key] = validate_shard(name, tables[key], cfg_settings, **inputs)
        yield from audit(name, reports)
        rows = sum(t.num_rows for t in tables.values())
        context.log.info(f"{name}: {rows} pairs over {len(tables)} shard(s), all checks passed")
        yield dg.Output(tables)

    return _qa


def build_qa_assets(settings: QASettings) -> list[dg.AssetsDefinition]:
    return [build_qa_asset(t, settings) for t in TASKS]
