import dagster as dg

from sf_platform.defs.ingest.assets import curated, shard_content, source_index
from sf_platform.defs.ingest.near_duplicates import near_duplicates

defs = dg.Definitions(assets=[source_index, shard_content, curated, near_duplicates])
