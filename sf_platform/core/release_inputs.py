"""What the release reads from the store: QA keys per task, the funnel, and provenance.

Provenance is read from the data itself (the scene tables' provenance columns), not from the
current config, so a release cannot claim real models for tables a tiny model produced.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc

from sf_platform.core.schemas import TASKS
from sf_platform.storage.object_store import ObjectStore

TINY_MARK = "tiny"


def qa_keys_by_task(store: ObjectStore) -> dict[str, list[str]]:
    """task -> sorted QA Parquet keys (``assets/qa_<task>/<source>/<shard>.parquet``)."""
    return {t: store.list(f"assets/qa_{t}", ".parquet") for t in TASKS}


def _distinct(store: ObjectStore, keys: list[str], column: str) -> set[str]:
    values: set[str] = set()
    for k in keys:
        t = store.read_table(k, columns=[column])
        values.update(v for v in pc.unique(t.column(column)).to_pylist() if v)
    return values


def collect_provenance(store: ObjectStore, cfg, code_versions: dict[str, str]) -> dict:
    """Model ids actually used (from scene rows), profile (tiny if any id is a tiny model)."""
    scene_keys = store.list("assets/scene", ".parquet")
    models = {
        "objects": sorted(_distinct(store, scene_keys, "provenance")),
        "masks": sorted(_distinct(store, scene_keys, "mask_provenance")),
        "depth": sorted(_distinct(store, scene_keys, "depth_provenance")),
        "poses": sorted(_distinct(store, scene_keys, "pose_provenance")),
    }
    used = [m for ms in models.values() for m in ms]
    tiny = any(TINY_MARK in m for m in used) or cfg.models.profile == "tiny"
    return {
        "profile": "tiny" if tiny else "real",
        "models": models,
        "configured_models": cfg.models.model_dump(mode="json", exclude={"k8s"}),
        "code_versions": dict(code_versions),
        "sources": [s.name for s in cfg.sources],
    }


def collect_funnel(store: ObjectStore, shard_key: str | None = None) -> dict:
    """images (indexed) -> curated -> objects -> QA per task, with drop reasons; the whole
    store, or one ``<source>/<shard>`` partition."""

    def keys(prefix: str) -> list[str]:
        found = store.list(prefix, ".parquet")
        return [k for k in found if k.endswith(f"{prefix}/{shard_key}.parquet")] if shard_key else found

    def rows(prefix: str) -> int:
        return sum(store.read_table(k, columns=[]).num_rows for k in keys(prefix))

    dropped: Counter = Counter()
    for k in keys("quarantine"):
        t = store.read_table(k, columns=["kind", "reason"])
        dropped.update(f"{a}:{b}" for a, b in zip(t.column("kind").to_pylist(), t.column("reason").to_pylist()))
    curated = rows("assets/images")
    dropped_images = sum(v for k, v in dropped.items() if k.startswith("image:"))
    return {
        "images": curated + dropped_images,
        "curated": curated,
        "objects": rows("assets/scene"),
        "qa": {t: rows(f"assets/qa_{t}") for t in TASKS},
        "dropped": dict(sorted(dropped.items())),
    }
