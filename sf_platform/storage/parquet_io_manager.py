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

from sf_platform.defs.metadata import table_metadata
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
        """Write one table per partition: a ``pa.Table`` for a single partition, or a
        ``{partition_key: pa.Table}`` mapping when the step materialized several shards
        (a run over a partition range, see ``sf_platform.defs.shard_runs``)."""
        if obj is None:
            return
        tables = self._tables_by_partition(context, obj)
        keys, rows = {}, 0
        for pk, table in tables.items():
            key = self._key(context, pk)
            self.store.write_table(key, table)
            keys[pk or ""] = key
            rows += table.num_rows
        schema = next(iter(tables.values())).schema if tables else None
        meta = table_metadata(rows, schema, self.store.uri(next(iter(keys.values()))) if len(keys) == 1 else None)
        if len(keys) > 1:
            meta["partitions_written"] = dg.MetadataValue.int(len(keys))
        context.add_output_metadata(meta)

    @staticmethod
    def _tables_by_partition(context: dg.OutputContext, obj) -> dict[str | None, pa.Table]:
        name = context.asset_key.to_user_string()
        partitions = context.asset_partition_keys if context.has_asset_partitions else [None]
        if isinstance(obj, pa.Table):
            if len(partitions) != 1:
                raise TypeError(f"{name}: a run over {len(partitions)} partitions must return "
                                "{partition_key: pa.Table}, got one table")
            return {partitions[0]: obj}
        if isinstance(obj, dict) and context.has_asset_partitions:
            if set(obj) != set(partitions):
                raise ValueError(f"{name}: returned tables for {sorted(obj)}, expected {sorted(partitions)}")
            for pk, table in obj.items():
                if not isinstance(table, pa.Table):
                    raise TypeError(f"{name}[{pk}]: outputs must be pyarrow.Table, got {type(table).__name__}")
            return dict(obj)
        raise TypeError(
            f"{name}: outputs must be pyarrow.Table (or one per partition), got "
            f"{type(obj).__name__} (this IO manager never pickles)"
        )

    def load_input(self, context: dg.InputContext):
        """One partition: its table.  Several (a run over a partition range): a
        ``{partition_key: pa.Table}`` mapping, so each shard is still processed on its own."""
        upstream = context.upstream_output
        if not context.has_asset_partitions:
            return self.store.read_table(self._key(upstream, None))
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self.store.read_table(self._key(upstream, keys[0]))
        return {pk: self.store.read_table(self._key(upstream, pk)) for pk in keys}
