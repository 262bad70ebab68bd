"""Poses: given keypoints pass through (no model); ViTPose on person boxes in crop batches."""

from __future__ import annotations

import math

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


BOXES = [[120.0, 20.0, 250.0, 440.0], [10.5, 300.25, 60.0, 80.0], [450.0, 400.0, 120.0, 160.0]]  # x, y, w, h


def test_crops_match_vitpose_processor(photos):
    """Our crops (only the sampled region is warped) equal VitPoseImageProcessor's pixels,
    including a box reaching past the image (black outside)."""
    import torch
    from transformers import VitPoseImageProcessor

    from sf_platform.core.imaging import ModelImage
    from sf_platform.models.inputs import normalize
    from sf_platform.models.pose import vitpose_crops

    proc = VitPoseImageProcessor(size={"height": 256, "width": 192})
    img = photos["astronaut"]
    ref = proc(images=img, boxes=[BOXES], return_tensors="pt")["pixel_values"]
    crops = vitpose_crops(ModelImage.full(img), BOXES, (256, 192))
    ours = normalize(torch.from_numpy(crops).permute(0, 3, 1, 2), proc.image_mean, proc.image_std)
    assert ours.shape == ref.shape
    grey = 1 / (255 * 0.224)
    assert (ours - ref).abs().max() <= 1.01 * grey  # at most one grey level (float rounding of the warp)
    assert (ours - ref).abs().mean() < 0.01 * grey
    assert (crops[2, -40:, -40:] == 0).all()  # past the photo's corner


def test_crops_from_a_reduced_decode_are_close_to_full_ones(photos):
    from PIL import Image

    from sf_platform.core.imaging import ModelImage
    from sf_platform.models.pose import crops_need, vitpose_crops

    img = np.asarray(Image.fromarray(photos["astronaut"]).resize((1024, 1024)))
    boxes = [[240.0, 40.0, 500.0, 880.0]]
    need = crops_need(boxes, (256, 192))(1024, 1024)
    # The box padded to the crop's aspect (660 x 880) and by 1.25 is 1100 px tall for 256 rows.
    assert need == (math.ceil(1024 * 256 / 1100), math.ceil(1024 * 256 / 1100))
    quarter = ModelImage(np.ascontiguousarray(np.asarray(Image.fromarray(img).reduce(4))), 1024, 1024)
    full = vitpose_crops(ModelImage.full(img), boxes, (256, 192)).astype(int)
    reduced = vitpose_crops(quarter, boxes, (256, 192)).astype(int)
    assert np.abs(full - reduced).mean() < 4  # the same region, at the crop's own resolution
    assert crops_need([[0.0, 0.0, 20.0, 40.0]], (256, 192))(1024, 768) == (1024, 768)  # small box: full size


def test_keypoints_match_vitpose_post_processing():
    import torch
    from transformers import VitPoseImageProcessor
    from transformers.models.vitpose.modeling_vitpose import VitPoseEstimatorOutput

    from sf_platform.models.pose import vitpose_keypoints

    proc = VitPoseImageProcessor(size={"height": 256, "width": 192})
    heatmaps = torch.rand(3, 17, 64, 48, generator=torch.Generator().manual_seed(0))
    ref = proc.post_process_pose_estimation(VitPoseEstimatorOutput(heatmaps=heatmaps), boxes=[BOXES[:2], BOXES[2:]])
    kp, scores = vitpose_keypoints(heatmaps.numpy(), BOXES, (256, 192))
    ref_kp = torch.stack([p["keypoints"] for image in ref for p in image]).numpy()
    ref_scores = torch.stack([p["scores"] for image in ref for p in image]).numpy()
    np.testing.assert_allclose(kp, ref_kp, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
