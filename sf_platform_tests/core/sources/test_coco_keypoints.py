import json

import numpy as np
import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.sources.coco_keypoints import (
    coco_to_keypoints,
    match_keypoints,
    read_keypoints,
)
from sf_platform.core.sources.index import build_index

from .helpers import KEYPOINTS, O365, read_all, reasons


def _raw(kp_id: int) -> list[float]:
    doc = json.loads(KEYPOINTS.read_text())
    return next(a["keypoints"] for a in doc["annotations"] if a["id"] == kp_id)


def test_visibility_becomes_a_score():
    flat = np.array([[10, 20, 2, 0, 0, 0, 5, 6, 1] + [0] * 42])
    out = coco_to_keypoints(flat)
    assert out.shape == (1, 51) and out.dtype == np.float32
    assert out[0, :9].tolist() == [10, 20, 1.0, 0, 0, 0.0, 5, 6, 1.0]


def test_read_keypoints_skips_empty_annotations_and_flags_malformed():
    kp = read_keypoints(str(KEYPOINTS), chunk_bytes=97)  # tiny windows: nested RLE dicts, polygons
    rows = {r["kp_id"]: r for r in kp.to_pylist()}
    assert sorted(rows) == ["9001", "9002", "9003", "9004", "9006"]  # 9005 has num_keypoints 0
    assert rows["9006"]["keypoints"] is None  # 50 numbers, not 51
    assert rows["9001"]["file_name"] == "images/v2/patch0/objects365_v2_00000001.jpg"
    assert rows["9001"]["bbox_px"] == [102.0, 52.0, 180.0, 168.0]
    assert rows["9001"]["keypoints"] == pytest.approx(
        coco_to_keypoints(np.array([_raw(9001)]))[0].tolist()
    )


def test_keypoints_join_person_boxes_in_the_index(file_store):
    src = SourceConfig(
        name="o365",
        format="objects365",
        images="/data/o365",
        annotations=str(O365),
        keypoints=str(KEYPOINTS),
        shard_size=3,
    )
    build_index(src, file_store, S3Config())
    shard = read_all(file_store, "o365")
    objs = {o["object_id"]: o for o in shard.objects.to_pylist()}
    # 9001 matched by file_name onto person 101; 9003 by image id (its file_name differs) onto 112.
    assert objs["101"]["keypoints"] == pytest.approx(
        coco_to_keypoints(np.array([_raw(9001)]))[0].tolist()
    )
    assert objs["112"]["keypoints"] is not None
    assert objs["116"]["keypoints"] is None  # a person with no skeleton near it
    assert objs["102"]["keypoints"] is None  # not a person
    r = reasons(shard.quarantine)
    assert r["9002"] == "unmatched_keypoints"  # no person box overlaps
    assert r["9004"] == "unmatched_keypoints"  # its image is not in the source
    assert r["9006"] == "malformed_keypoints"
    assert "9005" not in r
    orphan = next(q for q in shard.quarantine.to_pylist() if q["object_id"] == "9004")
    assert orphan["kind"] == "keypoints" and orphan["shard"] == "00000"


def test_matching_is_one_to_one_and_works_on_normalized_boxes():
    nan4 = [np.nan] * 4
    # Two persons in image 0 (normalized boxes only, as OpenImages) and one chair.
    obj_pos = np.array([0, 0, 0])
    is_person = np.array([True, True, False])
    box_px = np.array([nan4, nan4, nan4])
    box_norm = np.array([[0.1, 0.1, 0.3, 0.5], [0.6, 0.1, 0.8, 0.5], [0.1, 0.1, 0.3, 0.5]])
    # Three skeletons in a 1000x500 image: one on each person, a second near person 0.
    kp_pos = np.array([0, 0, 0])
    kp_px = np.array([[105, 52, 300, 250], [600, 50, 800, 250], [120, 60, 310, 240]], dtype=float)
    wh = np.array([[1000, 500]] * 3, dtype=float)
    match = match_keypoints(obj_pos, is_person, box_px, box_norm, kp_pos, kp_px, wh)
    assert match[1] == 1
    assert sorted([match[0], match[2]]) == [-1, 0]  # one box takes one skeleton


def test_low_overlap_does_not_match():
    match = match_keypoints(
        np.array([0]),
        np.array([True]),
        np.array([[0, 0, 100, 100.0]]),
        np.array([[np.nan] * 4]),
        np.array([0]),
        np.array([[50, 50, 150, 150.0]]),
        np.array([[200, 200.0]]),
    )
    assert match.tolist() == [-1]  # IoU 1/7
