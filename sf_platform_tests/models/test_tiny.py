from __future__ import annotations

import os
from pathlib import Path

from sf_platform.models.loading import files_hash
from sf_platform.models.tiny import OPS, ensure_tiny_models


def test_tiny_models_are_cached_and_deterministic(tiny_dir, tmp_path):
    paths = ensure_tiny_models(tiny_dir)
    assert set(paths) == set(OPS)
    assert paths["masks"].endswith(".pth") and Path(paths["masks"]).is_file()
    for op in ("depth", "detection", "pose"):
        assert list(Path(paths[op]).glob("*.safetensors")), op  # safetensors, not pickles
    before = os.stat(Path(paths["pose"]) / "model.safetensors").st_mtime_ns
    assert ensure_tiny_models(tiny_dir)["pose"] == paths["pose"]
    assert os.stat(Path(paths["pose"]) / "model.safetensors").st_mtime_ns == before  # not rebuilt
    # Seeded: a fresh build elsewhere has identical weights.
    other = ensure_tiny_models(tmp_path, ops=("pose", "masks"))
    assert files_hash([Path(other["pose"]) / "model.safetensors"]) == files_hash([Path(paths["pose"]) / "model.safetensors"])
    assert files_hash([Path(other["masks"])]) == files_hash([Path(paths["masks"])])
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".")]  # no temp leftovers
