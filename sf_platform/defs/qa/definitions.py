import dagster as dg

from sf_platform.config import Config
from sf_platform.defs.qa.assets import build_qa_assets


def build_defs(cfg: Config) -> dg.Definitions:
    """Built per location load, so each task's code_version reflects the current templates
    and the configured thresholds."""
    return dg.Definitions(assets=build_qa_assets(cfg.qa))
