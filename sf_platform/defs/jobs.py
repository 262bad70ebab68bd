"""Named jobs, so runs read well in the UI and the CLI/sensor can launch them by name.

They set no executor of their own: the code location's default executor, chosen by
``execution:`` in config (``defs/executors.py``), applies to them and to the implicit asset job
that backfills, automation and the UI launch, so every run places GPU steps the same way.
(Refer to these jobs by name elsewhere: a second job object of the same name in one
Definitions is a conflict.)
"""

from __future__ import annotations

import dagster as dg

from sf_platform.core.schemas import TASKS
from sf_platform.defs.partitions import shards, sources

index_job = dg.define_asset_job(
    "index_sources", selection=dg.AssetSelection.assets("source_index"), partitions_def=sources,
)

shard_job = dg.define_asset_job(
    "process_shard",
    selection=dg.AssetSelection.assets(
        "images", "objects", "quarantine", "detections", "masks", "depth", "poses", "scene",
        *[f"qa_{t}" for t in TASKS],
    ),
    partitions_def=shards,
    description="Everything for one shard: curation, perception, scene and the six QA tables.",
)

# The release first refreshes the near-duplicate table over every shard's image hashes, so
# what it leaves out is decided from the same shards it publishes.
release_job = dg.define_asset_job("publish_release",
                                  selection=dg.AssetSelection.assets("near_duplicates", "release"))
