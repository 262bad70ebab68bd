"""The scene table against ground truth: a hand-built scene, the synthetic source, a real stereo pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.core.depth_stats import encode_depth_map, map_shape, nearest_downsample
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.scene import build_scene
from sf_platform.models.depth import run_depth
from sf_platform.models.masks import run_masks
from sf_platform.models.pose import run_poses

# profile "real" with no model configured: any attempt to load a model would fail loudly, so
# these tests also prove that given inputs never load one.
NO_MODELS = ModelsConfig(profile="real", device="cpu", masks={"backend": "box"},
                         depth={"model": None}, pose={"model": None}, detection={"model": None})


def no_image(row):
    raise AssertionError(f"image {row['image_id']} should not be loaded when everything is given")


def _objects(rows: list[dict], width: int, height: int) -> pa.Table:
    for r in rows:
        r.setdefault("provenance", "annotation")
        if r.get("bbox_px") is not None:
            r["bbox_1000"] = px_to_1000(np.array([r["bbox_px"]]), width, height)[0].tolist()
    return pa.Table.from_pylist(rows, schema=schemas.OBJECTS)


def _toward_keypoints(cx: float, top: float, h: float) -> list[float]:
    kp = np.zeros((17, 3), np.float32)
    for left, right, span, y in [(5, 6, 0.11, 0.19), (11, 12, 0.07, 0.52), (1, 2, 0.03, 0.06)]:
        kp[left] = (cx + span * h, top + y * h, 2)
        kp[right] = (cx - span * h, top + y * h, 2)
    kp[0] = (cx, top + 0.075 * h, 2)
    return kp.reshape(-1).tolist()


def test_hand_built_scene_depth_counts_ranks_facing():
    W, H = 400, 300
    depth = np.full((H, W), 20.0, np.float32)
    boxes = {
        "c1": ([40, 150, 120, 250], 3.0),
        "c2": ([250, 160, 330, 240], 6.0),
        "p": ([150, 40, 230, 280], 4.5),
        "grp": ([340, 20, 390, 80], 8.0),
    }
    for box, z in boxes.values():
        x1, y1, x2, y2 = box
        depth[y1:y2, x1:x2] = z
    images = pa.Table.from_pylist(
        [{"source": "s", "shard": "0", "image_id": "A", "image_uri": "file:///a.jpg", "width": W, "height": H,
          "depth_uri": "mem://A", "count": 2, "count_label": "chair"}],
        schema=schemas.IMAGES,
    )
    objects = _objects([
        {"object_id": "c1", "image_id": "A", "category": "chair", "bbox_px": boxes["c1"][0]},
        {"object_id": "c2", "image_id": "A", "category": "chair", "bbox_px": boxes["c2"][0], "is_occluded": True},
        {"object_id": "grp", "image_id": "A", "category": "chair", "bbox_px": boxes["grp"][0], "is_group": True},
        {"object_id": "p", "image_id": "A", "category": "person", "bbox_px": boxes["p"][0],
         "keypoints": _toward_keypoints(190, 40, 240)},
        {"object_id": "cup", "image_id": "A", "category": "cup", "points": [{"x": 60.0, "y": 30.0}]},
        {"object_id": "gone", "image_id": "Z", "category": "cup", "bbox_px": [1, 1, 5, 5]},  # image quarantined
    ], W, H)
    depth_t, dmeta = run_depth(images, NO_MODELS, no_image, lambda row: depth)
    masks_t, _ = run_masks(images, objects, NO_MODELS, no_image)
    poses_t, _ = run_poses(images, objects, NO_MODELS, no_image)
    assert dmeta["model"] == "given" and not dmeta["model_loaded"]

    scene = build_scene(images, objects, masks_t, depth_t, poses_t, QASettings())
    assert scene.schema == schemas.SCENE
    rows = {r["object_id"]: r for r in scene.to_pylist()}
    assert set(rows) == {"c1", "c2", "grp", "p", "cup"}
    for oid, (_, z) in boxes.items():
        assert rows[oid]["depth_median"] == pytest.approx(z, rel=1e-3), oid
        assert rows[oid]["depth_reliable"] and rows[oid]["depth_kind"] == "metric"
        assert rows[oid]["depth_provenance"] == "given"
    assert rows["c1"]["image_depth_min"] == pytest.approx(3.0) and rows["c1"]["image_depth_max"] == pytest.approx(20.0)
    # Counting: the group box is kept but not counted; the point-only cup counts its point.
    assert rows["c1"]["category_count"] == 2 and not rows["c1"]["category_unique"]
    assert rows["grp"]["category_unique"] is False and rows["grp"]["x_rank"] is None
    assert rows["p"]["category_count"] == 1 and rows["p"]["category_unique"]
    assert rows["cup"]["category_count"] == 1 and rows["cup"]["depth_median"] == pytest.approx(20.0)
    assert not rows["cup"]["depth_reliable"]  # a point says nothing about extent
    assert (rows["c1"]["x_rank"], rows["c2"]["x_rank"]) == (0, 1)
    assert (rows["c1"]["size_rank"], rows["c2"]["size_rank"]) == (0, 1)  # 80x100 > 80x80
    assert (rows["c1"]["depth_rank"], rows["c2"]["depth_rank"]) == (0, 1)  # 3 m closer than 6 m
    assert rows["p"]["facing"] == "toward" and rows["p"]["facing_confidence"] >= 0.6
    assert rows["c1"]["facing"] is None
    assert rows["c2"]["is_occluded"] and rows["c1"]["mask_provenance"] == "box"
    assert rows["c1"]["image_count"] == 2 and rows["c1"]["image_count_label"] == "chair"
    assert rows["c1"]["width"] == W and rows["c1"]["image_uri"] == "file:///a.jpg"


def test_disparity_ranks_larger_as_closer():
    W, H = 200, 100
    disp = np.full((H, W), 1.0, np.float32)
    disp[20:80, 10:60] = 9.0  # near (large disparity)
    disp[20:80, 120:170] = 4.0
    data, h, w = encode_depth_map(disp)
    images = pa.Table.from_pylist([{"image_id": "A", "width": W, "height": H}], schema=schemas.IMAGES)
    depth = pa.Table.from_pylist([{"image_id": "A", "depth_map": data, "map_height": h, "map_width": w,
                                   "depth_kind": "disparity", "depth_provenance": "m", "depth_min": 1.0,
                                   "depth_max": 9.0}], schema=schemas.DEPTH)
    objects = _objects([
        {"object_id": "far", "image_id": "A", "category": "box", "bbox_px": [120, 20, 170, 80]},
        {"object_id": "near", "image_id": "A", "category": "box", "bbox_px": [10, 20, 60, 80]},
    ], W, H)
    rows = {r["object_id"]: r for r in build_scene(images, objects, None, depth, None).to_pylist()}
    assert rows["near"]["depth_rank"] == 0 and rows["far"]["depth_rank"] == 1
    assert rows["near"]["depth_median"] == 9.0 and rows["near"]["mask_area"] is None


def test_trusted_sam_like_mask_beats_box_centre():
    """An L-shaped object whose box centre is background: a good mask gives its true depth."""
    from sf_platform.core.mask_bits import MASK_GRID, grid_from_mask, pack_grid

    W, H = 200, 100
    d = np.full((H, W), 10.0, np.float32)
    obj = np.zeros((H, W), bool)
    obj[20:60, 40:52] = True
    obj[48:60, 40:80] = True
    d[obj] = 3.0
    data, h, w = encode_depth_map(d)
    box = [40.0, 20.0, 80.0, 60.0]
    images = pa.Table.from_pylist([{"image_id": "A", "width": W, "height": H}], schema=schemas.IMAGES)
    depth = pa.Table.from_pylist([{"image_id": "A", "depth_map": data, "map_height": h, "map_width": w,
                                   "depth_kind": "metric", "depth_provenance": "given", "depth_min": 3.0,
                                   "depth_max": 10.0}], schema=schemas.DEPTH)
    objects = _objects([{"object_id": "L", "image_id": "A", "category": "lamp", "bbox_px": box}], W, H)

    def masks(box_iou):
        return pa.Table.from_pylist([{"object_id": "L", "image_id": "A", "mask_grid": MASK_GRID,
                                      "mask_bits": pack_grid(grid_from_mask(obj, box)), "mask_area": float(obj.sum()),
                                      "mask_pred_iou": 0.95, "mask_box_iou": box_iou, "mask_provenance": "sam:x",
                                      "mask_frame_px": box}], schema=schemas.MASKS)

    good = build_scene(images, objects, masks(0.6), depth, None, QASettings(min_mask_box_iou=0.5)).to_pylist()[0]
    assert good["depth_median"] == pytest.approx(3.0) and good["depth_reliable"]
    poor = build_scene(images, objects, masks(0.3), depth, None, QASettings(min_mask_box_iou=0.5)).to_pylist()[0]
    assert poor["depth_median"] == pytest.approx(10.0)  # fell back to the box centre


def test_stereo_motorcycle_disparity_medians_match_truth():
    """A real photo with true disparity: medians through the stored (downsampled, float16) map
    agree with medians over the full-resolution truth, and the ordering they imply is right."""
    import skimage.data

    _, _, disp = skimage.data.stereo_motorcycle()
    H, W = disp.shape
    small = nearest_downsample(disp)
    assert small.shape == map_shape(H, W)
    data, h, w = encode_depth_map(small)
    finite = disp[np.isfinite(disp)]
    images = pa.Table.from_pylist([{"image_id": "moto", "width": W, "height": H}], schema=schemas.IMAGES)
    depth = pa.Table.from_pylist([{"image_id": "moto", "depth_map": data, "map_height": h, "map_width": w,
                                   "depth_kind": "disparity", "depth_provenance": "stereo",
                                   "depth_min": float(finite.min()), "depth_max": float(finite.max())}],
                                 schema=schemas.DEPTH)
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(40):
        bw, bh = rng.uniform(60, 250), rng.uniform(60, 250)
        x1, y1 = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
        boxes.append([x1, y1, x1 + bw, y1 + bh])
    objects = _objects([{"object_id": str(i), "image_id": "moto", "category": "region", "bbox_px": b}
                        for i, b in enumerate(boxes)], W, H)
    rows = build_scene(images, objects, None, depth, None).to_pylist()

    span = float(finite.max() - finite.min())
    truth = []
    for r, (x1, y1, x2, y2) in zip(rows, boxes):
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        region = disp[round(cy - hh):round(cy + hh), round(cx - hw):round(cx + hw)]
        t = float(np.median(region[np.isfinite(region)]))
        truth.append(t)
        assert r["depth_median"] == pytest.approx(t, abs=0.03 * span)
    # Larger disparity = closer: depth_rank follows descending true disparity wherever the
    # true medians are clearly apart.
    rank = {int(r["object_id"]): r["depth_rank"] for r in rows}
    for i in range(len(rows)):
        for j in range(len(rows)):
            if truth[i] > truth[j] + 0.1 * span:
                assert rank[i] < rank[j]


FILLS_BOX_CENTRE = {"person", "car", "cup", "bottle", "dog", "potted plant", "book"}


def test_synthetic_scenes_depth_and_facing_match_ground_truth(tmp_path):
    from sf_platform.synthetic import generate

    paths = generate(tmp_path, 16, seed=5)
    gt = pq.read_table(paths.ground_truth).to_pylist()
    image_rows = {}
    for g in gt:
        stem = Path(g["file_name"]).stem
        image_rows[g["image_id"]] = {"image_id": g["image_id"], "file_name": g["file_name"], "width": g["width"],
                                     "height": g["height"], "depth_uri": str(Path(paths.depth_dir) / f"{stem}.npy")}
    images = pa.Table.from_pylist(list(image_rows.values()), schema=schemas.IMAGES)
    objects = _objects([
        {"object_id": g["object_id"], "image_id": g["image_id"], "category": g["category"], "bbox_px": g["bbox_px"],
         "is_crowd": g["is_crowd"], "is_truncated": g["is_truncated"], "keypoints": g["keypoints"]}
        for g in gt
    ], 640, 480)
    depth_t, _ = run_depth(images, NO_MODELS, no_image, lambda row: np.load(row["depth_uri"], allow_pickle=False))
    masks_t, _ = run_masks(images, objects, NO_MODELS, no_image)
    poses_t, pmeta = run_poses(images, objects, NO_MODELS, no_image)
    assert pmeta["counts"]["estimated"] == 0
    scene = {r["object_id"]: r for r in build_scene(images, objects, masks_t, depth_t, poses_t).to_pylist()}

    # With box masks the depth comes from the box centre and is trusted only when the whole box
    # is one depth layer (depth_stats.BOX_LAYER_PERCENTILES): a table's or a lamp's box centre
    # can be the room behind it.  So every object marked reliable, whatever its shape or
    # occlusion, must have its true depth; objects that fill their box are mostly kept.
    for g in gt:
        row = scene[g["object_id"]]
        if row["depth_reliable"] and not g["is_crowd"]:
            assert row["depth_median"] == pytest.approx(g["true_depth"], rel=2e-3), g["category"]
    clear = [g for g in gt if g["visible_fraction"] >= 0.999 and not g["is_truncated"] and not g["is_crowd"]
             and g["category"] in FILLS_BOX_CENTRE]
    assert len(clear) >= 20
    reliable = [g for g in clear if scene[g["object_id"]]["depth_reliable"]]
    assert len(reliable) >= 0.3 * len(clear)
    persons = [g for g in gt if g["category"] == "person" and g["facing"]]
    assert persons
    confident = 0
    for g in persons:
        s = scene[g["object_id"]]
        if s["facing_confidence"] >= 0.6:
            confident += 1
            assert s["facing"] == g["facing"], g["object_id"]
    assert confident >= 0.8 * len(persons)


def test_quarantined_annotation_makes_its_category_incomplete(tmp_path):
    """B2, the reviewer's case: 4 chairs annotated, 2 quarantined for bad geometry.  Without
    the flag QA said "How many chairs? 2" and named "the rightmost chair"."""
    from PIL import Image

    from sf_platform.core.curation import curate_shard
    from sf_platform.core.qa.generate import generate_tasks

    Image.fromarray(np.full((600, 800, 3), 128, np.uint8)).save(tmp_path / "a.jpg")
    raw_images = pa.Table.from_pylist(
        [{"source": "o365", "shard": "00000", "image_id": "1", "file_name": "a.jpg",
          "width": 800, "height": 600}],
        schema=schemas.RAW_IMAGES,
    )

    def o(oid, box, cat="Chair"):
        return {"source": "o365", "shard": "00000", "object_id": oid, "image_id": "1",
                "category": cat, "bbox_px": box, "provenance": "annotation", "score": 1.0}

    raw_objects = pa.Table.from_pylist([
        o("1", [10., 10., 100., 200.]), o("2", [300., 10., 400., 200.]),
        o("3", [500., 300., 500., 400.]),  # zero width: degenerate_box
        o("4", [900., 10., 950., 50.]),  # outside the 800-wide photo: box_outside_image
        o("5", [600., 100., 700., 500.], "Lamp"),
    ], schema=schemas.OBJECTS)
    cur = curate_shard(raw_images, raw_objects, schemas.empty(schemas.QUARANTINE), str(tmp_path))
    scene = build_scene(cur.images, cur.objects, None, None, None)
    rows = {r["object_id"]: r for r in scene.to_pylist()}
    assert [rows[k]["category_incomplete"] for k in ("1", "2", "5")] == [True, True, False]
    assert rows["5"]["category_unique"] and not rows["1"]["category_unique"]
    out = generate_tasks(scene, QASettings(max_category_share=1.0))
    counted = {r["fact"]["subject"]: r["answer"] for r in out["counting"].to_pylist()}
    assert counted == {"Lamp": "1"}
    texts = [r["question"] + " " + r["answer"] for t in out.values() for r in t.to_pylist()]
    assert not [t for t in texts if "most chair" in t or "the chair?" in t.lower()]
    assert not [r for r in out["grounding"].to_pylist() if r["fact"]["subject"] == "Chair"]
    assert any("The lamp." == r["answer"] for r in out["referring"].to_pylist())


def test_related_classes_and_lost_categories_are_not_unique():
    """category_ancestors (OpenImages hierarchy): a "Man" next to a "Person" box is incomplete
    both ways; images.all_categories_incomplete marks every category of the image."""
    images = pa.Table.from_pylist(
        [{"image_id": "A", "width": 1000, "height": 1000},
         {"image_id": "B", "width": 1000, "height": 1000, "all_categories_incomplete": True}],
        schema=schemas.IMAGES,
    )
    objects = _objects([
        {"object_id": "m", "image_id": "A", "category": "Man", "bbox_px": [0, 0, 100, 500],
         "category_ancestors": ["Person"]},
        {"object_id": "p", "image_id": "A", "category": "Person", "bbox_px": [300, 0, 400, 500],
         "category_ancestors": []},
        {"object_id": "car", "image_id": "A", "category": "Car", "bbox_px": [600, 0, 900, 300],
         "category_ancestors": ["Vehicle"]},
        {"object_id": "dog", "image_id": "B", "category": "Dog", "bbox_px": [0, 0, 100, 100]},
    ], 1000, 1000)
    rows = {r["object_id"]: r for r in build_scene(images, objects, None, None, None).to_pylist()}
    assert {k: (r["category_incomplete"], r["category_unique"]) for k, r in rows.items()} == {
        "m": (True, False),
        "p": (True, False),
        "car": (False, True),
        "dog": (True, False),
    }


@pytest.mark.parametrize("flag", ["is_crowd", "is_group", "is_depiction", "is_fake", "is_reflected"])
def test_scene_stores_the_instance_facts_qa_reads(flag):
    """One rule (core.instances): the scene stores it, SceneView reads the stored columns, and a
    scene without them (older, or hand-built) gets the same facts from the same function."""
    from sf_platform.core.instances import INSTANCE_COLUMNS, NON_INSTANCE_FLAGS
    from sf_platform.core.qa.scene_view import SceneView

    assert flag in NON_INSTANCE_FLAGS
    images = pa.Table.from_pylist([{"image_id": "A", "width": 100, "height": 100}], schema=schemas.IMAGES)
    objects = _objects([
        {"object_id": "a", "image_id": "A", "category": "cup", "bbox_px": [0, 0, 10, 10]},
        {"object_id": "b", "image_id": "A", "category": "cup", "bbox_px": [50, 0, 60, 10], flag: True},
        {"object_id": "c", "image_id": "A", "category": "dog", "bbox_px": [20, 20, 40, 40]},
        {"object_id": "d", "image_id": "A", "category": "dog", "points": [{"x": 80.0, "y": 80.0}, {"x": 90.0, "y": 90.0}]},
    ], 100, 100)
    scene = build_scene(images, objects, None, None, None)
    rows = {r["object_id"]: r for r in scene.to_pylist()}
    assert [rows[k]["countable"] for k in "abcd"] == [True, False, True, True]
    assert [rows[k]["instances"] for k in "abcd"] == [1, 0, 1, 2]
    assert [rows[k]["category_count"] for k in "abcd"] == [1, 1, 3, 3]
    assert [rows[k]["category_clean"] for k in "abcd"] == [False, False, True, True]  # the flagged cup
    assert [rows[k]["category_all_boxed"] for k in "abcd"] == [True, True, False, False]  # points of dog
    assert not any(rows[k]["category_unique"] for k in "abcd")

    settings = QASettings()
    stored = SceneView(scene, settings)
    bare = SceneView(scene.drop_columns([c for c in INSTANCE_COLUMNS]), settings)
    for name in ("countable", "instances", "n_instances", "all_boxed", "category_clean"):
        assert np.array_equal(getattr(stored, name), getattr(bare, name)), name
    # The view reads the stored columns: change one and the view follows it.
    flipped = scene.set_column(scene.column_names.index("category_clean"), "category_clean",
                               pa.array([True] * scene.num_rows))
    assert SceneView(flipped, settings).category_clean.all()


def test_scene_does_not_import_qa():
    import subprocess
    import sys

    code = "import sys, sf_platform.core.scene; print(sorted(m for m in sys.modules if m.startswith('sf_platform.core.qa')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
