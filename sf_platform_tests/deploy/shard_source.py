"""One small shard run through the real code location, for the deployment tests.

The source is the demo's OpenImages-format source (boxes, no depth, no keypoints), so the
tiny SAM, Depth-Anything and ViTPose models all run on it, and the detections step passes
the given boxes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import yaml

from sf_platform.config import load_config
from sf_platform.demo import make_openimages_source
from sf_platform.storage.layout import QUARANTINE, shard_key, shard_name, table_key
from sf_platform.storage.object_store import store_for

GPU_STEPS = ("detections", "masks", "depth", "poses")
SOURCE = "oi"


def make_source(root: Path) -> dict:
    """Four images in one shard; returns the config's ``sources`` entry."""
    entry = make_openimages_source(root / "sources", num_images=4, shard_size=4)
    assert entry["name"] == SOURCE
    return entry


def write_config(path: Path, source: dict, storage: Path, execution: dict | None = None,
                 k8s: dict | None = None) -> Path:
    """A config with ``source``, a local store at ``storage`` and the tiny models (plus the
    ``execution:`` and ``models.k8s`` sections when given)."""
    cfg: dict[str, Any] = {"storage": "file://" + str(storage), "sources": [source],
                           "models": {"profile": "tiny", "device": "cpu"}}
    if k8s is not None:
        cfg["models"]["k8s"] = k8s
    if execution is not None:
        cfg["execution"] = execution
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


PARTITION = shard_key(SOURCE, shard_name(0))


def register_and_index(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Registers the source and its first shard, and indexes the source (in process)."""
    instance.add_dynamic_partitions("sources", [SOURCE])
    instance.add_dynamic_partitions("shards", [PARTITION])
    result = defs.resolve_job_def("index_sources").execute_in_process(
        partition_key=SOURCE, instance=instance)
    assert result.success


def shard_assets(defs: dg.Definitions) -> list[str]:
    """The asset names the shard job materializes."""
    job = defs.resolve_job_def("process_shard")
    return sorted(k.path[-1] for k in job.asset_layer.executable_asset_keys)


def shard_tables(config_path: Path, assets: list[str]) -> dict[str, pa.Table]:
    """Every table the shard run wrote, read back from the config's store."""
    store = store_for(load_config(config_path))
    return {name: store.read_table(table_key(name, PARTITION, prefix=QUARANTINE) if name == QUARANTINE
                                   else table_key(name, PARTITION)) for name in assets}
