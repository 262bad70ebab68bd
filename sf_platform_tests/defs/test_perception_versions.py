"""Each perception asset's code_version follows its own code and settings, and only those."""

from __future__ import annotations

import dagster as dg
import yaml

from sf_platform.definitions import build_definitions

ASSETS = ("detections", "masks", "depth", "poses", "scene")


def _versions(tmp_path, name: str, models: dict, qa: dict | None = None, source: dict | None = None) -> dict:
    cfg = {"storage": str(tmp_path / "store"), "models": models, "qa": qa or {},
           "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"), **(source or {})}]}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    graph = build_definitions(str(path)).resolve_asset_graph()
    return {a: graph.get(dg.AssetKey(a)).code_version for a in ASSETS}


def changed(a: dict, b: dict) -> set[str]:
    return {k for k in a if a[k] != b[k]}


def test_a_setting_changes_only_the_asset_it_decides(tmp_path):
    base_models = {"profile": "real", "masks": {"backend": "sam", "checkpoint": None}}
    base = _versions(tmp_path, "base", base_models)
    assert len(set(base.values())) == len(ASSETS)  # every asset its own version
    depth = _versions(tmp_path, "depth", base_models | {"depth": {"model": "someone/other-depth"}})
    assert changed(base, depth) == {"depth"}
    revision = _versions(tmp_path, "rev", base_models | {"pose": {"revision": "abc123"}})
    assert changed(base, revision) == {"poses"}
    masks = _versions(tmp_path, "masks", base_models | {"masks": {"backend": "box"}})
    assert changed(base, masks) == {"masks"}
    scene = _versions(tmp_path, "scene", base_models, qa={"min_mask_box_iou": 0.7})
    assert changed(base, scene) == {"scene"}
    # QA settings the scene does not read, and batch sizes, change nothing here.
    assert _versions(tmp_path, "qa", base_models, qa={"near_far_log_margin": 0.3}) == base
    same_model = {"model": "depth-anything/Depth-Anything-V2-Small-hf", "batch_size": 4}
    assert _versions(tmp_path, "batch", base_models | {"depth": same_model, "device": "cpu"}) == base
    # A given-depth source's unit and policy decide its depth rows.
    policy = _versions(tmp_path, "policy", base_models, source={"depth_policy": "skip"})
    assert changed(base, policy) == {"depth"}
