"""Poses: given keypoints pass through (no model); ViTPose on person boxes in crop batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.models.pose import run_poses
from sf_platform_tests.models.conftest import Loader, images_table


def _toward(cx=250.0, h=400.0):
    kp = np.zeros((17, 3), np.float32)
    for left, right, span, y in [(5, 6, 0.11, 0.19), (11, 12, 0.07, 0.52), (1, 2, 0.03, 0.06)]:
        kp[left], kp[right] = (cx + span * h, y * h, 2), (cx - span * h, y * h, 2)
    kp[0] = (cx, 0.075 * h, 2)
    return kp.reshape(-1).tolist()


def _obj(oid, image, category, box, **kw):
    return {"source": "t", "shard": "0", "object_id": oid, "image_id": image, "category": category,
            "bbox_px": box, "provenance": "annotation"} | kw


def test_given_keypoints_pass_through_without_a_model(photos):
    objs = pa.Table.from_pylist([_obj("p", "astronaut", "person", [100.0, 0.0, 400.0, 500.0], keypoints=_toward()),
                                 _obj("c", "astronaut", "chair", [1.0, 1.0, 50.0, 50.0])], schema=schemas.OBJECTS)
    loader = Loader(photos)
    out, meta = run_poses(images_table(photos), objs, ModelsConfig(pose={"model": None}), loader)
    assert loader.loaded == [] and not meta["model_loaded"] and meta["model"] == "given"
    (row,) = out.to_pylist()
    assert row["pose_provenance"] == "given" and row["keypoints"] == _toward()
    assert row["facing"] == "toward" and row["facing_confidence"] >= 0.6
    assert meta["counts"]["facing_toward"] == 1


def test_vitpose_on_person_boxes_batches_crops(photos, tiny_dir):
    objs = pa.Table.from_pylist([
        _obj("p1", "astronaut", "Person", [100.0, 0.0, 400.0, 500.0]),
        _obj("p2", "astronaut", "woman", [10.0, 20.0, 200.0, 300.0]),
        _obj("p3", "chelsea", "person", [10.0, 20.0, 200.0, 300.0]),
        _obj("crowd", "chelsea", "person", [0.0, 0.0, 400.0, 300.0], is_crowd=True),
        _obj("cat", "chelsea", "cat", [0.0, 0.0, 100.0, 100.0]),
        _obj("g", "coffee", "person", [0.0, 0.0, 100.0, 100.0], keypoints=_toward()),
    ], schema=schemas.OBJECTS)
    loader = Loader(photos)
    cfg = ModelsConfig(profile="tiny", device="cpu", pose={"batch_size": 2})
    out, meta = run_poses(images_table(photos), objs, cfg, loader, tiny_dir=tiny_dir)
    assert sorted(loader.loaded) == ["astronaut", "chelsea"]
    rows = {r["object_id"]: r for r in out.to_pylist()}
    assert set(rows) == {"p1", "p2", "p3", "g"}
    for oid in ("p1", "p2", "p3"):
        kp = np.asarray(rows[oid]["keypoints"]).reshape(17, 3)
        assert rows[oid]["pose_provenance"] == "tiny:pose" and np.isfinite(kp).all()
        assert rows[oid]["facing"] in ("toward", "away", "left", "right", "unknown")
        assert 0.0 <= rows[oid]["facing_confidence"] <= 1.0
    assert rows["g"]["pose_provenance"] == "given"
    assert meta["batches"] == 2 and meta["batch_size_used"] == 2  # 3 crops, batch 2
    assert meta["tiny"] and meta["model"] == "tiny:pose" and meta["counts"]["estimated"] == 3
