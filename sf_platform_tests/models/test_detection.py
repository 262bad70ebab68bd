"""Boxes for point-only objects; boxed objects pass through; nothing to detect loads nothing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.models.detection import match_points_to_boxes, run_detections
from sf_platform_tests.models.conftest import Loader, images_table

TINY = ModelsConfig(profile="tiny", device="cpu", detection={"batch_size": 2})


def _objects(rows):
    return pa.Table.from_pylist(rows, schema=schemas.OBJECTS)


BOXED = {"source": "t", "shard": "0", "object_id": "b1", "image_id": "coffee", "category": "cup",
         "bbox_px": [10.0, 20.0, 110.0, 120.0], "bbox_1000": [17, 50, 183, 300], "score": 1.0, "provenance": "annotation"}


def test_match_points_greedy_one_to_one():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 100, 100], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.5, 0.2])
    pts = np.array([[5, 5], [6, 6], [55, 55], [500, 500]], float)
    # p0 takes the best box (0); p1 then gets box 1; p2 only fits box 1 (taken) and box 2.
    assert match_points_to_boxes(pts, boxes, scores) == [0, 1, 2, None]
    assert match_points_to_boxes(pts, np.zeros((0, 4)), np.zeros(0)) == [None] * 4


def test_nothing_to_detect_never_loads_a_model(photos):
    cfg = ModelsConfig(profile="real", detection={"model": None})  # would fail if loaded
    loader = Loader(photos)
    objs = _objects([BOXED])
    out, meta = run_detections(images_table(photos), objs, cfg, loader)
    assert out.equals(schemas.conform(objs, schemas.OBJECTS))
    assert loader.loaded == [] and meta["model_loaded"] is False and meta["counts"]["point_objects"] == 0


def test_points_get_detector_boxes_that_contain_them(photos, tiny_dir):
    pts = [{"x": 250.0, "y": 200.0}, {"x": 100.0, "y": 400.0}, {"x": 5.0, "y": 5.0}]
    objs = _objects([
        BOXED,
        {"source": "t", "shard": "0", "object_id": "p1", "image_id": "astronaut", "category": "person",
         "points": pts, "provenance": "points"},
        {"source": "t", "shard": "0", "object_id": "p2", "image_id": "chelsea", "category": "cat",
         "points": [{"x": 200.0, "y": 150.0}], "provenance": "points"},
    ])
    loader = Loader(photos)
    out, meta = run_detections(images_table(photos), objs, TINY, loader, score_threshold=0.0, tiny_dir=tiny_dir)
    assert sorted(loader.loaded) == ["astronaut", "chelsea"]  # coffee has only boxed objects
    assert out.schema == schemas.OBJECTS
    rows = out.to_pylist()
    assert rows[0] == schemas.conform(_objects([BOXED]), schemas.OBJECTS).to_pylist()[0]  # unchanged
    detected = [r for r in rows if r["provenance"] == "detector:tiny:detection"]
    kept = [r for r in rows if r["provenance"] == "points"]
    assert detected, "a random tiny OWLv2 at threshold 0 still proposes boxes covering some points"
    for r in detected:
        (p,) = r["points"]
        x1, y1, x2, y2 = r["bbox_px"]
        assert x1 <= p["x"] <= x2 and y1 <= p["y"] <= y2
        img = photos[r["image_id"]]
        assert r["bbox_1000"] == px_to_1000(np.array([r["bbox_px"]]), img.shape[1], img.shape[0])[0].tolist()
        assert r["score"] is not None and r["object_id"].split("#")[0] in ("p1", "p2")
        assert 0 <= x1 and x2 <= img.shape[1] and 0 <= y1 and y2 <= img.shape[0]
    # Every labelled point is accounted for exactly once: matched or still point-only.
    n_points = len(detected) + sum(len(r["points"]) for r in kept)
    assert n_points == 4 == meta["counts"]["points"]
    assert meta["counts"]["points_matched"] == len(detected)
    assert len({tuple(r["bbox_px"]) for r in detected if r["image_id"] == "astronaut"}) == sum(
        r["image_id"] == "astronaut" for r in detected)  # one box per point
    assert meta["tiny"] and meta["model"] == "tiny:detection" and meta["revision"].startswith("sha256:")
    assert meta["device"] == "cpu" and meta["dtype"] == "float32" and meta["batch_size_used"] == 2


def test_high_threshold_keeps_points_as_point_only(photos, tiny_dir):
    objs = _objects([{"object_id": "p", "image_id": "astronaut", "category": "person",
                      "points": [{"x": 250.0, "y": 200.0}], "provenance": "points"}])
    out, meta = run_detections(images_table(photos), objs, TINY, Loader(photos), score_threshold=1.0, tiny_dir=tiny_dir)
    assert out.num_rows == 1 and out.column("bbox_px")[0].as_py() is None
    assert meta["counts"]["points_unmatched"] == 1


def test_missing_image_row_is_an_error(photos, tiny_dir):
    objs = _objects([{"object_id": "p", "image_id": "nope", "category": "x", "points": [{"x": 1.0, "y": 1.0}]}])
    with pytest.raises(ValueError, match="not in the images table"):
        run_detections(images_table(photos), objs, TINY, Loader(photos), tiny_dir=tiny_dir)


def test_device_preprocessing_matches_owlv2_processor(photos):
    """Our on-device OWLv2 preprocessing reproduces Owlv2ImageProcessor's pixels."""
    import torch
    from transformers import Owlv2ImageProcessor

    from sf_platform.models.detection import owlv2_pixels

    proc = Owlv2ImageProcessor(size={"height": 320, "width": 320})
    for img in (photos["coffee"], photos["astronaut"]):
        ref = proc(images=img, return_tensors="pt")["pixel_values"][0]
        ours = owlv2_pixels([torch.from_numpy(img)], (320, 320), proc.image_mean, proc.image_std, "cpu")[0]
        assert ours.shape == ref.shape
        assert (ours - ref).abs().mean() < 0.05  # normalised units (~0.015 per grey level)
        assert np.corrcoef(ours.flatten(), ref.flatten())[0, 1] > 0.99
