"""Named jobs, so runs read well in the UI and the CLI/sensor can launch them by name."""

from __future__ import annotations

import dagster as dg

from sf_platform.core.schemas import TASKS
from sf_platform.defs.partitions import shards, sources

# Local runs execute their steps in one process: a subprocess per step would cost seconds of
# imports each. Deployments choose another executor (deploy/README.md).
EXECUTOR = dg.in_process_executor

index_job = dg.define_asset_job(
    "index_sources", selection=dg.AssetSelection.assets("source_index"), partitions_def=sources,
    executor_def=EXECUTOR,
)

shard_job = dg.define_asset_job(
    "process_shard",
    selection=dg.AssetSelection.assets(
        "images", "objects", "quarantine", "detections", "masks", "depth", "poses", "scene",
        *[f"qa_{t}" for t in TASKS],
    ),
    partitions_def=shards,
    description="Everything for one shard: curation, perception, scene and the six QA tables.",
    executor_def=EXECUTOR,
)

release_job = dg.define_asset_job("publish_release", selection=dg.AssetSelection.assets("release"),
                                  executor_def=EXECUTOR)
