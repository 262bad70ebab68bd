"""The two partition sets of the platform.

- ``shards``: one dynamic partition per shard of a source, key ``"<source>/<shard>"``
  (``o365_val/00042``).  A source of 2.8M images at 1,000 images a shard is ~2,800
  partitions.  Registered by ``sf-platform run`` and by the source sensor.
- ``sources``: one dynamic partition per configured source (its annotation index).
"""

from __future__ import annotations

import dagster as dg

from sf_platform.storage.layout import shard_key, split_shard_key  # noqa: F401 (one home: layout)

shards = dg.DynamicPartitionsDefinition(name="shards")
sources = dg.DynamicPartitionsDefinition(name="sources")


