"""The source sensor against a real Dagster instance: index, register, then only what grew."""

from __future__ import annotations

import dagster as dg
import yaml

from sf_platform.config import load_config
from sf_platform.core.sources.index import build_index
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.sensors import source_sensor
from sf_platform.storage.object_store import ObjectStore


def _config(tmp_path, num_images: int):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({
        "storage": str(tmp_path / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"),
                     "num_images": num_images, "shard_size": 4, "seed": 1}],
    }))
    return path


def _tick(instance, path, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"platform": PlatformResource(config_path=str(path))})
    result = source_sensor(ctx)
    for req in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def _index(path):
    cfg = load_config(path)
    store = ObjectStore(root=cfg.storage)
    return build_index(cfg.sources[0], store, cfg.s3)


def test_sensor_indexes_registers_and_runs_only_growth(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    path = _config(tmp_path, 6)

    first = _tick(instance, path, None)
    assert [(r.job_name, r.partition_key) for r in first.run_requests] == [("index_sources", "syn")]
    assert instance.get_dynamic_partitions("sources") == ["syn"]

    _index(path)
    second = _tick(instance, path, first.cursor)
    assert sorted(r.partition_key for r in second.run_requests) == ["syn/00000", "syn/00001"]
    assert all(r.job_name == "process_shard" for r in second.run_requests)
    assert sorted(instance.get_dynamic_partitions("shards")) == ["syn/00000", "syn/00001"]

    quiet = _tick(instance, path, second.cursor)
    assert quiet.run_requests == []

    # The source grows from 6 to 10 images: shard 00000 is untouched, 00001 gains images,
    # 00002 is new.  First the sensor re-indexes, then it runs only those two shards.
    grown = _config(tmp_path, 10)
    reindex = _tick(instance, grown, quiet.cursor)
    assert [(r.job_name, r.partition_key) for r in reindex.run_requests] == [("index_sources", "syn")]
    _index(grown)
    after = _tick(instance, grown, reindex.cursor)
    assert sorted(r.partition_key for r in after.run_requests) == ["syn/00001", "syn/00002"]
    assert "syn/00002" in instance.get_dynamic_partitions("shards")
