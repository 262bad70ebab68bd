"""The two partition sets of the platform.

- ``shards``: one dynamic partition per shard of a source, key ``"<source>/<shard>"``
  (``o365_val/00042``).  A source of 2.8M images at 1,000 images a shard is ~2,800
  partitions.  Registered by ``sf-platform run`` and by the source sensor.
- ``sources``: one dynamic partition per configured source (its annotation index).
"""

from __future__ import annotations

import dagster as dg

shards = dg.DynamicPartitionsDefinition(name="shards")
sources = dg.DynamicPartitionsDefinition(name="sources")


def shard_key(source: str, shard: str) -> str:
    return f"{source}/{shard}"


def split_shard_key(key: str) -> tuple[str, str]:
    """``"o365_val/00042"`` -> ``("o365_val", "00042")``; a clear error for anything else."""
    source, sep, shard = key.rpartition("/")
    if not sep or not source or not shard:
        raise ValueError(f"shard partition keys look like '<source>/<shard>', got {key!r}")
    return source, shard
