import dagster as dg

from sf_platform.defs.ingest.assets import curated, source_index

defs = dg.Definitions(assets=[source_index, curated])
