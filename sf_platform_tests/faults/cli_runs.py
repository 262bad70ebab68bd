"""Helpers for failure tests that run ``sf-platform`` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def write_config(tmp_path: Path, name: str, images: Path, num_images: int = 4, shard_size: int = 2) -> Path:
    """A tiny synthetic source (tiny models, box masks) whose store is ``<tmp>/<name>/store``.

    Configs that share ``images`` share the rendered scenes, so their tables can be compared
    byte for byte.
    """
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({
        "storage": str(folder / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(images),
                     "num_images": num_images, "shard_size": shard_size, "seed": 9}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}},
    }))
    return path


def start_run(config: Path, home: Path, *extra: str) -> subprocess.Popen:
    """``sf-platform run`` in its own process group (so a test can SIGKILL all of it)."""
    env = dict(os.environ)
    env.pop("SF_PLATFORM_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sf_platform.cli", "run", "--config", str(config), "--dagster-home", str(home),
         "--workers", "1", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def tables(store: Path) -> dict[str, bytes]:
    """Every Parquet table under a store's assets/ and quarantine/, by key."""
    out = {}
    for prefix in ("assets", "quarantine"):
        for p in sorted((store / prefix).rglob("*.parquet")):
            out[str(p.relative_to(store))] = p.read_bytes()
    return out
