import dagster as dg

from sf_platform.defs.qa.assets import build_qa_assets


def build_defs() -> dg.Definitions:
    """Built on each call, so each task's code_version is read when the location loads."""
    return dg.Definitions(assets=build_qa_assets())
