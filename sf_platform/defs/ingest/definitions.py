import dagster as dg

from sf_platform.defs.ingest.assets import curated, shard_content, source_index

defs = dg.Definitions(assets=[source_index, shard_content, curated])
