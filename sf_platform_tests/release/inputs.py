"""QA tables in a store, ready to be released, and the terms the release states for them."""

from __future__ import annotations

import pyarrow as pa

from sf_platform.config import ReleaseSettings
from sf_platform.core import release
from sf_platform.core.licenses import SourceTerms
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.scenes import random_scene

S = QASettings()
REAL = {
    "profile": "real",
    "models": {"depth": "depth-anything/Depth-Anything-V2-Small-hf"},
    "code_versions": {"scene": "scene-1"},
}
TERMS = {
    "o365": SourceTerms("o365", "objects365", "cc-by-4.0", "https://www.objects365.org/download.html"),
    "openimages": SourceTerms("openimages", "openimages", "cc-by-2.0", "s3://open-images/validation"),
}
SHARDS = (("o365", "00000", 1), ("o365", "00001", 2), ("openimages", "00000", 3))


def shard_scene(images: int, seed: int, source: str, shard: str) -> pa.Table:
    """A random scene whose image ids and file names are unique to the shard (as a source's are)."""
    t = random_scene(images, seed=seed, source=source)
    for col, fmt in (("image_id", "{s}-{v}"), ("file_name", "images/{s}-{v}.jpg")):
        vals = [fmt.format(s=shard, v=v) for v in t.column("image_id").to_pylist()]
        if col == "file_name":
            t = t.set_column(t.schema.get_field_index("image_uri"), "image_uri",
                             pa.array([f"file:///data/{source}/{v}" for v in vals], pa.string()))
        t = t.set_column(t.schema.get_field_index(col), col, pa.array(vals, pa.string()))
    return t


def put_inputs(store, images: int = 30, shards=SHARDS, settings: QASettings = S) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for source, shard, seed in shards:
        for task, table in generate_tasks(shard_scene(images, seed, source, shard), settings).items():
            key = f"assets/qa_{task}/{source}/{shard}.parquet"
            store.write_table(key, table)
            keys.setdefault(task, []).append(key)
    return keys


def build(store, version: str, keys, release_settings: ReleaseSettings | None = None, **kw) -> dict:
    return release.build_release(store, version, keys, kw.pop("provenance", REAL), kw.pop("settings", S),
                                 sources=kw.pop("sources", TERMS), release=release_settings, **kw)


def local_root(store, version: str) -> str:
    return store.root[len("file://"):] + f"/release/{version}"
