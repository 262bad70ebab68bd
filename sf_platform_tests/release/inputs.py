"""QA tables in a store, ready to be released, and the terms the release states for them."""

from __future__ import annotations

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


def put_inputs(store, images: int = 30, shards=SHARDS, settings: QASettings = S) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for source, shard, seed in shards:
        for task, table in generate_tasks(random_scene(images, seed=seed, source=source), settings).items():
            key = f"assets/qa_{task}/{source}/{shard}.parquet"
            store.write_table(key, table)
            keys.setdefault(task, []).append(key)
    return keys


def build(store, version: str, keys, release_settings: ReleaseSettings | None = None, **kw) -> dict:
    return release.build_release(store, version, keys, kw.pop("provenance", REAL), kw.pop("settings", S),
                                 sources=kw.pop("sources", TERMS), release=release_settings, **kw)


def local_root(store, version: str) -> str:
    return store.root[len("file://"):] + f"/release/{version}"
