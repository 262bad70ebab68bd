import dagster as dg

from sf_platform.defs.qa.assets import build_qa_assets

defs = dg.Definitions(assets=build_qa_assets())
