"""Weights: local folder / hub id, offline errors that say how to fix them, SAM checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sf_platform.config import ModelsConfig, parse_config
from sf_platform.models.device import resolve_runtime
from sf_platform.models.loading import (
    ModelWeightsMissing,
    check_loadable,
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


def test_check_loadable_names_every_missing_model_and_its_sources(tmp_path, tiny_dir):
    """What ``sf-platform run`` checks before any shard: each op the sources need, offline."""
    folder = tmp_path / "data"
    folder.mkdir()
    rgbd = {"name": "rgbd", "format": "objects365", "images": str(folder), "annotations": str(folder),
            "depth": str(folder), "keypoints": str(folder)}
    pix = {"name": "pix", "format": "pixmo", "images": str(folder), "annotations": str(folder)}
    none = {"profile": "real", "masks": {"backend": "box"},
            "depth": {"model": None}, "pose": {"model": None}, "detection": {"model": None}}
    # Given depth and keypoints, depth_policy skip by default (no depth weights): nothing needed.
    assert check_loadable(parse_config({"sources": [rgbd], "models": none}, tmp_path)) == []
    # depth_policy: model without weights fails early, naming the source and the way out.
    problems = check_loadable(parse_config({"sources": [rgbd | {"depth_policy": "model"}], "models": none}, tmp_path))
    assert len(problems) == 1 and "depth model needed by source(s) rgbd" in problems[0]
    assert "models.depth.model is not set" in problems[0] and "depth_policy: skip" in problems[0]
    # PixMo needs detection, depth and pose; an uncached hub id offline is named too.
    models = none | {"detection": {"model": "sf-platform-tests/absent-owl"}, "masks": {"backend": "sam"}}
    problems = check_loadable(parse_config({"sources": [rgbd, pix], "models": models}, tmp_path))
    by_op = {p.split(" ")[0]: p for p in problems}
    assert set(by_op) == {"detection", "masks", "depth", "pose"}
    assert "source(s) pix:" in by_op["detection"] and "HF_HUB_OFFLINE" in by_op["detection"]
    assert "source(s) rgbd, pix:" in by_op["masks"] and "source(s) pix:" in by_op["depth"]
    # Local folders that hold models pass; the tiny profile needs no weights at all.
    from sf_platform.models.tiny import ensure_tiny_models

    paths = ensure_tiny_models(tiny_dir, ops=("detection", "depth", "pose"))
    local = {"profile": "real", "masks": {"backend": "box"}, "detection": {"model": paths["detection"]},
             "depth": {"model": paths["depth"]}, "pose": {"model": paths["pose"]}}
    assert check_loadable(parse_config({"sources": [rgbd, pix], "models": local}, tmp_path)) == []
    assert check_loadable(parse_config({"sources": [pix], "models": {"profile": "tiny"}}, tmp_path)) == []
