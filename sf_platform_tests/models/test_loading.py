"""Weights: local folder / hub id, offline errors that say how to fix them, SAM checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sf_platform.config import ModelsConfig
from sf_platform.models.device import resolve_runtime
from sf_platform.models.loading import (
    ModelWeightsMissing,
    files_hash,
    hub_offline,
    load_sam,
    load_transformers,
    model_ref,
)  # fmt: skip

CPU = resolve_runtime("cpu")


def _depth_classes():
    from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

    return DepthAnythingForDepthEstimation, AutoImageProcessor


def test_offline_hub_id_gives_one_clear_error():
    assert hub_offline()  # the test session runs offline (conftest)
    with pytest.raises(ModelWeightsMissing) as err:
        load_transformers(*_depth_classes(), "sf-platform-tests/no-such-depth-model", op="depth", runtime=CPU)
    msg = str(err.value)
    assert "sf-platform-tests/no-such-depth-model" in msg and "depth op" in msg
    assert "models.depth.model" in msg and "models.profile: tiny" in msg and "hf download" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_unset_or_bad_local_path_is_the_same_error(tmp_path):
    with pytest.raises(ModelWeightsMissing, match="models.depth.model is not set"):
        load_transformers(*_depth_classes(), None, op="depth", runtime=CPU)
    with pytest.raises(ModelWeightsMissing, match="not a model folder"):
        load_transformers(*_depth_classes(), str(tmp_path / "missing"), op="depth", runtime=CPU)
    with pytest.raises(ModelWeightsMissing, match="depth op"):
        load_transformers(*_depth_classes(), str(tmp_path), op="depth", runtime=CPU)  # empty folder


def test_local_folder_loads_with_a_weights_hash(tiny_dir):
    ref = model_ref(ModelsConfig(profile="tiny"), "depth", tiny_dir)[0]
    loaded = load_transformers(*_depth_classes(), ref, op="depth", runtime=CPU, tiny=True)
    assert loaded.revision == "sha256:" + files_hash(list(Path(ref).glob("*.safetensors")))
    assert loaded.model_id == "tiny:depth" and not loaded.model.training
    pinned = load_transformers(*_depth_classes(), ref, op="depth", runtime=CPU, revision="v1.2")
    assert pinned.revision == "v1.2" and pinned.model_id == ref


def test_files_hash_tracks_content(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    assert files_hash([a]) == files_hash([b])
    b.write_bytes(b"x" * 999 + b"y")
    assert files_hash([a]) != files_hash([b])


def test_sam_checkpoint_errors(tiny_dir, tmp_path):
    with pytest.raises(ModelWeightsMissing, match="models.masks.checkpoint is not set"):
        load_sam(None, "vit_b", runtime=CPU)
    with pytest.raises(ModelWeightsMissing, match="no such checkpoint"):
        load_sam(str(tmp_path / "sam_vit_b.pth"), "vit_b", runtime=CPU)
    tiny_ckpt = model_ref(ModelsConfig(profile="tiny"), "masks", tiny_dir)[0]
    with pytest.raises(ModelWeightsMissing, match="does not match models.masks.model_type='vit_b'"):
        load_sam(tiny_ckpt, "vit_b", runtime=CPU)
    pickled = tmp_path / "evil.pth"
    torch.save({"weights": Path("/etc/passwd")}, pickled)  # an arbitrary object, not tensors
    with pytest.raises(ModelWeightsMissing, match="not a tensors-only checkpoint"):
        load_sam(str(pickled), "vit_b", runtime=CPU)
    ok = load_sam(tiny_ckpt, "tiny", runtime=CPU, tiny=True)
    assert ok.revision.startswith("sha256:") and ok.model.image_encoder.img_size == 256


def test_model_ref_by_profile(tiny_dir):
    real = ModelsConfig()
    assert model_ref(real, "depth") == ("depth-anything/Depth-Anything-V2-Small-hf", False)
    assert model_ref(real, "masks") == (None, False)
    ref, tiny = model_ref(ModelsConfig(profile="tiny"), "pose", tiny_dir)
    assert tiny and Path(ref, "config.json").exists()
