"""What an index build produces: the summary JSON (written last) and one shard's raw tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore

# Bump when the reader output for the same inputs changes (forces a rebuild via the fingerprint).
READER_VERSION = "2"
# Images per index file: ~16k images x ~15 boxes keeps one bucket (sorted in memory while the
# file is written) around a quarter million rows (~40 MB of Arrow data per copy).
IMAGES_PER_FILE = 16_384
TABLES = ("images", "objects", "quarantine")


@dataclass(frozen=True)
class RawShard:
    images: pa.Table  # schemas.RAW_IMAGES
    objects: pa.Table  # schemas.OBJECTS (bbox_px in the annotation's pixel frame, or bbox_norm)
    quarantine: pa.Table  # schemas.QUARANTINE (reader-level rejects)


@dataclass(frozen=True)
class SourceIndexSummary:
    source: str
    format: str
    fingerprint: str
    num_images: int
    num_objects: int
    num_quarantined: int
    shards: dict[str, str] = field(default_factory=dict)  # "00000" -> content hash
    shard_size: int = 1000
    shards_per_file: int = 32
    reader_version: str = READER_VERSION
    previous_fingerprint: str | None = None
    # Where ``file_name`` is relative to: ``src.images``, or for the synthetic source the
    # generator's image folder.  Curation joins this with ``file_name``.
    images_root: str = ""
    # Problems worth a person's attention that reject no single row (e.g. most skeletons of a
    # keypoint file matching nothing); shown in the source_index asset's metadata and log.
    warnings: list[str] = field(default_factory=list)


def shards_per_file(shard_size: int) -> int:
    return max(1, IMAGES_PER_FILE // shard_size)


def write_index_summary(store: ObjectStore, summary: SourceIndexSummary) -> None:
    store.write_text(layout.index_summary_key(summary.source), json.dumps(asdict(summary), indent=1))


def load_index_summary(store: ObjectStore, source_name: str) -> SourceIndexSummary | None:
    """The current index summary of a source, or None when it was never indexed."""
    key = layout.index_summary_key(source_name)
    if not store.exists(key):
        return None
    data = json.loads(store.read_text(key))
    known = set(SourceIndexSummary.__dataclass_fields__)
    return SourceIndexSummary(**{k: v for k, v in data.items() if k in known})
