"""QA answers against the synthetic source's exact geometry (ground_truth.parquet)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform import synthetic
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_relation_answers


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    paths = synthetic.generate(tmp_path_factory.mktemp("syn"), 40, seed=5)
    gt = pq.read_table(paths.ground_truth).to_pylist()
    rows = []
    for g in gt:
        rows.append(
            {
                "source": "synthetic",
                "shard": "00000",
                "image_id": g["image_id"],
                "object_id": g["object_id"],
                "category": g["category"],
                "bbox_px": g["bbox_px"],
                "bbox_1000": px_to_1000([g["bbox_px"]], g["width"], g["height"])[0].tolist(),
                "is_crowd": g["is_crowd"],
                "is_truncated": g["is_truncated"],
                "file_name": g["file_name"],
                "image_uri": "file:///syn/" + g["file_name"],
                "width": g["width"],
                "height": g["height"],
                "depth_median": g["true_depth"],
                "depth_kind": "metric",
                "depth_reliable": True,
                "mask_box_iou": 1.0,
                "facing": g["facing"],
                "facing_confidence": 1.0 if g["facing"] else None,
            }
        )
    sc = pa.Table.from_pylist(rows, schema=schemas.SCENE)
    return {(g["image_id"], g["object_id"]): g for g in gt}, generate_tasks(sc, QASettings())


def test_near_far_matches_true_depth(truth):
    gt, out = truth
    rows = check_relation_answers(out["near_far"], "near_far")
    assert rows
    for r in rows:
        closer, farther = (
            gt[(r["image_id"], r["fact"]["subject"])],
            gt[(r["image_id"], r["fact"]["object"])],
        )
        assert closer["true_depth"] < farther["true_depth"]


def test_left_right_matches_true_boxes(truth):
    gt, out = truth
    rows = check_relation_answers(out["left_right"], "left_right")
    assert rows
    for r in rows:
        a, b = (
            gt[(r["image_id"], r["fact"]["subject"])]["bbox_px"],
            gt[(r["image_id"], r["fact"]["object"])]["bbox_px"],
        )
        assert a[0] + a[2] < b[0] + b[2]  # left centre
        assert a[0] <= b[0] and a[2] <= b[2]


def test_perspective_matches_true_facing(truth):
    gt, out = truth
    rows = check_relation_answers(out["perspective"], "perspective")
    assert rows
    for r in rows:
        o, p = gt[(r["image_id"], r["fact"]["subject"])], gt[(r["image_id"], r["fact"]["object"])]
        image_right = (o["bbox_px"][0] + o["bbox_px"][2]) > (p["bbox_px"][0] + p["bbox_px"][2])
        pred = r["fact"]["predicate"]
        if pred in ("left_of_person", "right_of_person"):
            theirs_left = image_right if p["facing"] == "toward" else not image_right
            assert (pred == "left_of_person") == theirs_left
        elif p["facing"] in ("toward", "away"):
            nearer = o["true_depth"] < p["true_depth"]
            assert (pred == "in_front_of_person") == (
                nearer if p["facing"] == "toward" else not nearer
            )
        else:
            facing_side = (not image_right) if p["facing"] == "left" else image_right
            assert (pred == "in_front_of_person") == facing_side
