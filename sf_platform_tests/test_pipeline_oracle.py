"""Every emitted fact is true: the whole pipeline on the synthetic source vs its ground truth.

Synthetic scenes (some stored EXIF-rotated) go through the real index, curation, perception
ops (given depth, box masks, given keypoints: no model needed), scene and the six generators;
each fact is then checked against the generator's exact geometry.  Thresholds may drop pairs;
they may not let a wrong one through.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sf_platform import synthetic
from sf_platform.config import parse_config
from sf_platform.core.curation import curate_shard
from sf_platform.core.depth_io import read_depth_map
from sf_platform.core.imaging import load_oriented_rgb
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.scene import build_scene
from sf_platform.core.sources.index import build_index, read_shard
from sf_platform.models.depth import run_depth
from sf_platform.models.detection import run_detections
from sf_platform.models.masks import run_masks
from sf_platform.models.pose import run_poses
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.core.qa.conditional_oracle import check_conditional_counts


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    paths = synthetic.generate(root / "syn", num_images=40, seed=21, rotated_every=5)
    cfg = parse_config({
        "storage": str(root / "store"),
        "sources": [{"name": "syn", "format": "objects365", "images": paths.images_dir,
                     "annotations": paths.annotations, "depth": paths.depth_dir,
                     "keypoints": paths.keypoints, "shard_size": 100}],
        "models": {"profile": "real", "device": "cpu", "masks": {"backend": "box"}},
    })
    store = ObjectStore(root=cfg.storage)
    src = cfg.sources[0]
    summary = build_index(src, store, cfg.s3)
    raw = read_shard(store, "syn", "00000", summary=summary)
    cur = curate_shard(raw.images, raw.objects, raw.quarantine, summary.images_root or src.images)

    def load(row):
        return load_oriented_rgb(row["image_uri"])

    objects, _ = run_detections(cur.images, cur.objects, cfg.models, load)
    masks, _ = run_masks(cur.images, objects, cfg.models, load)
    depth, _ = run_depth(cur.images, cfg.models, load, lambda row: read_depth_map(row["depth_uri"]))
    poses, _ = run_poses(cur.images, objects, cfg.models, load)
    settings = QASettings()
    scene = build_scene(cur.images, objects, masks, depth, poses, settings)
    qa = generate_tasks(scene, settings)
    gt = {(g["image_id"], g["object_id"]): g for g in pq.read_table(paths.ground_truth).to_pylist()}
    return cur, scene, qa, gt


def _gt(gt, row, key):
    return gt[(row["image_id"], row["fact"][key])]


def test_every_task_produces_pairs(pipeline):
    _, _, qa, _ = pipeline
    for task, table in qa.items():
        assert table.num_rows > 0, task


def test_curated_boxes_match_truth_after_exif(pipeline):
    cur, _, _, gt = pipeline
    rotated = {r["image_id"] for r in cur.images.to_pylist() if r["exif_orientation"] != 1}
    assert rotated, "the fixture must contain EXIF-rotated photos"
    for o in cur.objects.to_pylist():
        truth = gt[(o["image_id"], o["object_id"])]["bbox_px"]
        assert o["bbox_px"] == pytest.approx(truth, abs=1.0), (o["image_id"], o["object_id"])


def test_grounding_boxes_are_true(pipeline):
    cur, _, qa, gt = pipeline
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in cur.images.to_pylist()}
    for r in qa["grounding"].to_pylist():
        if r["fact"]["predicate"] != "bbox_1000":
            continue
        truth = _gt(gt, r, "subject")
        w, h = sizes[r["image_id"]]
        box = json.loads(r["fact"]["value"])
        expected = [round(1000 * truth["bbox_px"][i] / (w if i % 2 == 0 else h)) for i in range(4)]
        assert box == pytest.approx(expected, abs=1)


def test_counting_is_true(pipeline):
    _, _, qa, gt = pipeline
    per_image: dict[tuple[str, str], int] = {}
    crowd: set[tuple[str, str]] = set()
    for g in gt.values():
        key = (g["image_id"], g["category"])
        if g["is_crowd"]:
            crowd.add(key)
        else:
            per_image[key] = per_image.get(key, 0) + 1
    for r in qa["counting"].to_pylist():
        key = (r["image_id"], r["fact"]["subject"])
        assert key not in crowd
        assert int(r["fact"]["value"]) == per_image[key], key


def test_conditional_counting_is_true(pipeline):
    _, _, qa, gt = pipeline
    rows = qa["conditional_counting"].to_pylist()
    assert check_conditional_counts(rows, gt) > 0
    assert {r["fact"]["predicate"] for r in rows} >= {"count_left_of", "count_closer_than"}


def test_near_far_is_true(pipeline):
    _, _, qa, gt = pipeline
    for r in qa["near_far"].to_pylist():
        closer, farther = _gt(gt, r, "subject"), _gt(gt, r, "object")
        assert closer["true_depth"] < farther["true_depth"], r["question"]


def test_left_right_is_true(pipeline):
    _, _, qa, gt = pipeline
    for r in qa["left_right"].to_pylist():
        a, b = _gt(gt, r, "subject")["bbox_px"], _gt(gt, r, "object")["bbox_px"]
        assert a[0] + a[2] < b[0] + b[2] and a[0] <= b[0] and a[2] <= b[2], r["question"]


def test_perspective_is_true(pipeline):
    _, _, qa, gt = pipeline
    for r in qa["perspective"].to_pylist():
        o, p = _gt(gt, r, "subject"), _gt(gt, r, "object")
        assert p["category"] == "person" and p["facing"] is not None
        image_right = (o["bbox_px"][0] + o["bbox_px"][2]) > (p["bbox_px"][0] + p["bbox_px"][2])
        pred = r["fact"]["predicate"]
        if pred in ("left_of_person", "right_of_person"):
            assert p["facing"] in ("toward", "away")
            their_left = image_right if p["facing"] == "toward" else not image_right
            assert (pred == "left_of_person") == their_left, r["question"]
        elif p["facing"] in ("toward", "away"):
            nearer = o["true_depth"] < p["true_depth"]
            assert (pred == "in_front_of_person") == (nearer if p["facing"] == "toward" else not nearer)
        else:
            facing_side = (not image_right) if p["facing"] == "left" else image_right
            assert (pred == "in_front_of_person") == facing_side, r["question"]


def test_scene_records_where_each_input_came_from(pipeline):
    _, scene, _, _ = pipeline
    rows = scene.to_pylist()
    assert {r["depth_provenance"] for r in rows} == {"given"}
    assert {r["mask_provenance"] for r in rows} == {"box"}
    persons = [r for r in rows if r["category"] == "person"]
    assert persons and {r["pose_provenance"] for r in persons} == {"given"}
