"""The storage layout of DESIGN.md in one place: every object-store key and every partition key.

Nothing else in the code builds a key with an f-string or parses one with a regex: it asks
this module.  Keys are '/'-separated and relative to the store's root URL (see
:class:`sf_platform.storage.object_store.ObjectStore`).

```
assets/<asset>/<source>/<shard>.parquet        intermediate and QA tables (partitioned)
assets/<asset>.parquet                         an unpartitioned asset's table
quarantine/<source>/<shard>.parquet            rejected images/objects/depth maps
sources/<source>/index/...                     a source's shard-addressable annotation index
reports/<source>/<shard>/...                   a partition's on-demand quality report
release/<version>/...                          a published release (manifest.json last)
release/.staging/<version>-<token>/...         a release being written (never read as published)
release/.locks/<version>/<generation>.json     the publish lease lock of a version
```
"""

from __future__ import annotations

import re

ASSETS = "assets"
QUARANTINE = "quarantine"
SOURCES = "sources"
REPORTS = "reports"
RELEASE = "release"
STAGING = ".staging"
LOCKS = ".locks"
MANIFEST = "manifest.json"
QUALITY = "quality"

# Source names (config) and shard names (``00042``) share one alphabet, so a partition key
# ``<source>/<shard>`` splits unambiguously at its only '/'.
NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class LayoutError(ValueError):
    """A key or partition key does not follow the storage layout."""


# --- partition keys ---------------------------------------------------------------------------


def shard_name(index: int) -> str:
    """The i-th shard of a source: ``00042`` (five digits keep lexical order = numeric order)."""
    return f"{index:05d}"


def shard_key(source: str, shard: str) -> str:
    """Partition key of one shard of one source: ``o365_val/00042``."""
    for part in (source, shard):
        if not NAME.match(part or ""):
            raise LayoutError(f"source and shard names use [A-Za-z0-9_-], got {part!r}")
    return f"{source}/{shard}"


def split_shard_key(key: str) -> tuple[str, str]:
    """``"o365_val/00042"`` -> ``("o365_val", "00042")``; a clear error for anything else."""
    source, sep, shard = (key or "").partition("/")
    if not sep or not NAME.match(source) or not NAME.match(shard):
        raise LayoutError(f"shard partition keys look like '<source>/<shard>', got {key!r}")
    return source, shard


# --- asset tables -----------------------------------------------------------------------------


def asset_key(asset: str, partition_key: str | None = None) -> str:
    """Table of one asset partition: ``assets/<asset>/<source>/<shard>.parquet``."""
    if partition_key is None:
        return f"{ASSETS}/{asset}.parquet"
    split_shard_key(partition_key)
    return f"{ASSETS}/{asset}/{partition_key}.parquet"


def asset_prefix(asset: str) -> str:
    """Folder holding every partition of ``asset`` (for listing)."""
    return f"{ASSETS}/{asset}"


def quarantine_key(partition_key: str) -> str:
    split_shard_key(partition_key)
    return f"{QUARANTINE}/{partition_key}.parquet"


def table_key(asset: str, partition_key: str | None, prefix: str = ASSETS) -> str:
    """Key of an asset's table, under ``assets/`` or under another top-level prefix
    (the ``quarantine`` output lives at ``quarantine/<source>/<shard>.parquet``)."""
    if prefix == ASSETS:
        return asset_key(asset, partition_key)
    if prefix == QUARANTINE and partition_key is not None:
        return quarantine_key(partition_key)
    return f"{prefix}/{partition_key}.parquet" if partition_key else f"{prefix}.parquet"


def partition_of(key: str) -> str:
    """``assets/qa_counting/o365/00003.parquet`` (or ``quarantine/o365/00003.parquet``)
    -> ``o365/00003``."""
    parts = key.removesuffix(".parquet").split("/")
    if len(parts) < 3 or not key.endswith(".parquet"):
        raise LayoutError(f"not a partitioned table key: {key!r}")
    pk = f"{parts[-2]}/{parts[-1]}"
    split_shard_key(pk)
    return pk


# --- sources, reports, releases ---------------------------------------------------------------


def index_prefix(source: str) -> str:
    """Where a source's annotation index lives (one folder per fingerprint below it)."""
    if not NAME.match(source or ""):
        raise LayoutError(f"source names use [A-Za-z0-9_-], got {source!r}")
    return f"{SOURCES}/{source}/index"


def index_version_prefix(source: str, fingerprint: str) -> str:
    """One build of a source's index: ``sources/<source>/index/<fingerprint>``."""
    if not NAME.match(fingerprint or ""):
        raise LayoutError(f"index fingerprints use [A-Za-z0-9_-], got {fingerprint!r}")
    return f"{index_prefix(source)}/{fingerprint}"


def index_file_key(source: str, fingerprint: str, table: str, file_index: int) -> str:
    """``sources/<source>/index/<fingerprint>/<table>/<file>.parquet`` (``<file>``: 00000, ...)."""
    return f"{index_version_prefix(source, fingerprint)}/{table}/{shard_name(file_index)}.parquet"


def index_summary_key(source: str) -> str:
    """The summary naming a source's current index build (written last)."""
    return f"{index_prefix(source)}/summary.json"


def release_report_prefix(version: str) -> str:
    """A re-generated report of a published release (the release itself is never rewritten).
    ``.releases`` cannot be a source name, so it never collides with a partition's reports."""
    return f"{REPORTS}/.releases/{check_version(version)}"


def report_prefix(partition_key: str) -> str:
    split_shard_key(partition_key)
    return f"{REPORTS}/{partition_key}"


def evaluation_prefix(name: str) -> str:
    """Where ``sf-platform evaluate`` writes its page: ``reports/evaluate/<name>``."""
    if not NAME.match(name or ""):
        raise LayoutError(f"evaluation names use [A-Za-z0-9_-], got {name!r}")
    return f"{REPORTS}/evaluate/{name}"


VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


def check_version(version: str) -> str:
    if not VERSION.match(version or ""):
        raise LayoutError(f"release version {version!r} must match {VERSION.pattern} (e.g. 'v1.0')")
    return version


def release_prefix(version: str) -> str:
    return f"{RELEASE}/{check_version(version)}"


def release_staging_prefix(version: str, token: str) -> str:
    """A release being written: readers never look here; publish moves it to its final prefix."""
    return f"{RELEASE}/{STAGING}/{check_version(version)}-{token}"


def release_staging_root() -> str:
    """Folder holding every staged release (listed to clean up stagings of killed runs)."""
    return f"{RELEASE}/{STAGING}"


def staging_version(name: str) -> str:
    """``v1.0-20261201T153000-ab12cd34`` (a folder under :func:`release_staging_root`) -> ``v1.0``."""
    version, sep, _token = name.rpartition("-")
    version, sep2, _ = version.rpartition("-")
    if not sep or not sep2:
        raise LayoutError(f"not a staging folder name: {name!r}")
    return check_version(version)


def release_manifest_key(version: str) -> str:
    """The publish marker: a version exists for readers exactly when this key does."""
    return f"{release_prefix(version)}/{MANIFEST}"


def release_lock_prefix(version: str) -> str:
    return f"{RELEASE}/{LOCKS}/{check_version(version)}"


def release_quality_prefix(version: str) -> str:
    """The data-quality report of a published release (``index.html`` and what it links)."""
    return f"{release_prefix(version)}/{QUALITY}"
