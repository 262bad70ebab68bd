"""The per-source shard index: a source's annotations, read once, cut into fixed-size shards.

A shard is a fixed-size slice (``src.shard_size`` images, default 1,000) of the source's image
list *in source order*, named ``layout.shard_name(i // shard_size)``.  Every entry of the list
counts, rejected ones included, so shard membership depends only on the list: a source that
grows by appending images (and their annotations) keeps every old full shard byte-for-byte
identical (same content hash) and gains new shards, and nothing downstream re-runs for them.

:func:`build_index` streams the inputs once (readers spill objects to a local temporary folder),
buckets objects by shard on disk, and writes (keys from :mod:`sf_platform.storage.layout`)::

    <root>/sources/<name>/index/<fingerprint>/images/<file>.parquet      RAW_IMAGES
    <root>/sources/<name>/index/<fingerprint>/objects/<file>.parquet     OBJECTS
    <root>/sources/<name>/index/<fingerprint>/quarantine/<file>.parquet  QUARANTINE
    <root>/sources/<name>/index/summary.json                            written LAST

Each ``<file>`` holds ``shards_per_file`` consecutive shards, one Parquet row group per shard,
so :func:`read_shard` reads one footer and one row group per table.  The summary is written
last and names the fingerprint folder: a reader that loads it always sees a complete,
consistent index; the previous version's folder is kept (for readers still on it) and older
ones are deleted.

Reader-level quarantine (reason codes documented in :mod:`sf_platform.core.quarantine`):
image entries without id or file name, duplicate ids (the first entry is kept and owns every
annotation of that id), escaping file names; annotations of unknown or rejected images, of
unknown categories, with NaN/degenerate geometry; skeletons that match no person box.
Everything that needs pixels is curation's job.  Rows about no image of the list go to shard
``00000``'s quarantine so every reject surfaces in the pipeline.

One module per job: ``fingerprint`` (change detection, content hashes), ``inputs`` (files and
readers), ``rules`` (validation), ``buckets`` (disk buckets), ``keypoints`` (the skeleton
join), ``writer``, ``reader`` and ``summary``.
"""

from sf_platform.core.sources.index.build import build_index
from sf_platform.core.sources.index.fingerprint import source_fingerprint, table_digest
from sf_platform.core.sources.index.reader import read_shard
from sf_platform.core.sources.index.summary import (
    READER_VERSION,
    RawShard,
    SourceIndexSummary,
    load_index_summary,
)

__all__ = [
    "READER_VERSION",
    "RawShard",
    "SourceIndexSummary",
    "build_index",
    "load_index_summary",
    "read_shard",
    "source_fingerprint",
    "table_digest",
]
