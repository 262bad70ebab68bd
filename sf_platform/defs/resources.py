"""Resources: the validated platform config and the object store it points at.

The code location reads its config from the file named by ``SF_PLATFORM_CONFIG`` (the CLI sets
it; ``dagster dev`` needs it in the environment too).  Without it the location still loads,
with an empty source list and a local store at ``./sf_store``, so ``dagster definitions
validate`` works on a fresh checkout.
"""

from __future__ import annotations

import os
from functools import lru_cache

import dagster as dg

from sf_platform.config import Config, load_config, parse_config
from sf_platform.storage.object_store import ObjectStore

CONFIG_ENV = "SF_PLATFORM_CONFIG"


@lru_cache(maxsize=8)
def _load(path: str | None, mtime: float) -> Config:
    if not path:
        return parse_config({}, base_dir=os.getcwd())
    return load_config(path)


def current_config_path() -> str | None:
    path = os.environ.get(CONFIG_ENV)
    return os.path.abspath(path) if path else None


class PlatformResource(dg.ConfigurableResource):
    """Gives assets the parsed ``sources.yaml`` and the object store (no credentials inside)."""

    config_path: str | None = None

    def load(self) -> Config:
        path = self.config_path
        mtime = os.path.getmtime(path) if path and os.path.exists(path) else 0.0
        return _load(path, mtime)

    def store(self) -> ObjectStore:
        cfg = self.load()
        return ObjectStore(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region)
