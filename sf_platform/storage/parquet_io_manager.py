"""Dagster IO manager that stores every asset output as a Parquet table in the object store.

Keys follow DESIGN.md: ``<root>/assets/<asset_name>/<source>/<shard>.parquet`` for a
partitioned asset (the partition key is ``<source>/<shard>``) and
``<root>/assets/<asset_name>.parquet`` otherwise.  An asset can place its table under another
top-level prefix with the output metadata ``{"storage_prefix": "quarantine"}`` (the quarantine
table lives at ``<root>/quarantine/<source>/<shard>.parquet``).

Writes go through :class:`ObjectStore`, so they are atomic: a failed or interrupted step never
leaves a partial table at the final key.  Outputs must be ``pyarrow.Table`` (no pickles).
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from sf_platform.storage.layout import ASSETS, table_key
from sf_platform.storage.object_store import ObjectStore

DEFAULT_PREFIX = ASSETS


class ParquetIOManager(dg.ConfigurableIOManager):
    """Arrow tables in, Parquet (zstd) at DESIGN.md keys out; file:// or s3:// root."""

    root: str
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(root=self.root, endpoint_url=self.endpoint_url, region=self.region)

    @staticmethod
    def _prefix(context) -> str:
        meta = (context.definition_metadata or {}) if hasattr(context, "definition_metadata") else {}
        value = meta.get("storage_prefix", DEFAULT_PREFIX)
        return getattr(value, "value", value)

    def _key(self, context, partition_key: str | None) -> str:
        name = "/".join(context.asset_key.path)
        return table_key(name, partition_key, self._prefix(context))

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        if not isinstance(obj, pa.Table):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: outputs must be pyarrow.Table, got "
                f"{type(obj).__name__} (this IO manager never pickles)"
            )
        pk = context.partition_key if context.has_partition_key else None
        key = self._key(context, pk)
        uri = self.store.write_table(key, obj)
        context.add_output_metadata(
            {
                "rows": dg.MetadataValue.int(obj.num_rows),
                "storage_key": dg.MetadataValue.text(key),
                "uri": dg.MetadataValue.path(uri),
            }
        )

    def load_input(self, context: dg.InputContext) -> pa.Table:
        upstream = context.upstream_output
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
        else:
            keys = [None]
        tables = []
        for pk in keys:
            key = self._key(upstream, pk)
            tables.append(self.store.read_table(key))
        if len(tables) == 1:
            return tables[0]
        return pa.concat_tables(tables, promote_options="default")
