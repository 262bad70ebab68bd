import dagster as dg

from sf_platform.config import Config
from sf_platform.defs.perception.assets import build_perception_assets


def build_defs(cfg: Config) -> dg.Definitions:
    return dg.Definitions(assets=build_perception_assets(cfg))
