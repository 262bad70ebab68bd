"""Read one shard of a source's index: its images, objects and reader-level quarantine.

Each index file holds ``shards_per_file`` consecutive shards, one Parquet row group per shard;
pyarrow's predicate push-down on the ``shard`` column reads the footer and skips every row
group whose statistics exclude the shard, so one shard costs one row group per table however
many shards the source has.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.core import schemas
from sf_platform.core.sources.index.summary import RawShard, SourceIndexSummary, load_index_summary
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore, filesystem_for


def _read_shard_rows(store: ObjectStore, key: str, shard: str, schema: pa.Schema) -> pa.Table:
    fs, path = filesystem_for(store.uri(key), store.endpoint_url, store.region)
    table = pq.read_table(path, filesystem=fs, filters=[("shard", "==", shard)])
    return schemas.conform(table, schema)


def read_shard(
    store: ObjectStore, source_name: str, shard: str, summary: SourceIndexSummary | None = None
) -> RawShard:
    """One shard's images, objects and reader-level quarantine (reads one row group each).

    Pass ``summary`` (from :func:`load_index_summary`) when reading many shards, to pin them
    all to one index version and skip re-reading the summary.
    """
    summary = summary or load_index_summary(store, source_name)
    if summary is None:
        raise FileNotFoundError(
            f"source {source_name!r} has no index in {store.root}; build it first"
        )
    if shard not in summary.shards:
        raise KeyError(
            f"source {source_name!r} has no shard {shard!r} (it has {len(summary.shards)} shards)"
        )
    file_index = int(shard) // summary.shards_per_file
    tables = {
        name: _read_shard_rows(
            store,
            layout.index_file_key(source_name, summary.fingerprint, name, file_index),
            shard,
            schema,
        )
        for name, schema in (
            ("images", schemas.RAW_IMAGES),
            ("objects", schemas.OBJECTS),
            ("quarantine", schemas.QUARANTINE),
        )
    }
    return RawShard(**tables)
