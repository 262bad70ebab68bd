import dagster as dg

from sf_platform.defs.release.assets import release

defs = dg.Definitions(assets=[release])
