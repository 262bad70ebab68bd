"""The synthetic generator is the oracle other tests trust, so its own geometry is checked here."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from sf_platform import synthetic
from sf_platform.config import SourceConfig
from sf_platform.core.boxes import orient_boxes, orient_points, xywh_to_xyxy
from sf_platform.synthetic import (
    CATEGORY_IDS,
    camera,
    ensure_generated,
    generate,
    scene,
    to_raw_boxes,
)

KP = {name: i for i, name in enumerate(synthetic.COCO_KEYPOINT_NAMES)}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    paths = generate(out, 40, seed=3, rotated_every=3)
    gt = pq.read_table(paths.ground_truth).to_pylist()
    return paths, gt


def test_files_and_counts(scenes):
    paths, gt = scenes
    ann = json.loads(Path(paths.annotations).read_text())
    assert len(ann["images"]) == 40
    assert {a["id"] for a in ann["annotations"]} == {int(r["object_id"]) for r in gt}
    per_image = Counter(r["image_id"] for r in gt)
    assert set(per_image) == {str(i) for i in range(1, 41)}
    assert min(per_image.values()) >= 3 and max(per_image.values()) <= 8
    # Enough structure for every task: persons in most images, repeated categories for
    # counting, truncated objects, and some crowd boxes.
    with_person = {r["image_id"] for r in gt if r["category"] == "person"}
    assert len(with_person) >= 0.7 * 40
    repeats = Counter((r["image_id"], r["category"]) for r in gt if not r["is_crowd"])
    assert sum(1 for n in repeats.values() if n >= 2) >= 15
    assert any(r["is_truncated"] for r in gt)
    assert any(r["is_crowd"] for r in gt)
    cats = {c["id"]: c["name"] for c in ann["categories"]}
    for a in ann["annotations"]:
        assert a["iscrowd"] in (0, 1) and cats[a["category_id"]]
        assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3])


def test_deterministic_and_independent_of_count(tmp_path):
    a = generate(tmp_path / "a", 5, seed=11)
    b = generate(tmp_path / "b", 5, seed=11)
    c = generate(tmp_path / "c", 3, seed=11)
    d = generate(tmp_path / "d", 3, seed=12)
    assert Path(a.annotations).read_text() == Path(b.annotations).read_text()
    assert pq.read_table(a.ground_truth).equals(pq.read_table(b.ground_truth))
    img = lambda p, name: Path(p.images_dir, name).read_bytes()
    assert img(a, "000003.jpg") == img(c, "000003.jpg")  # scene i depends only on (seed, i)
    assert img(a, "000003.jpg") != img(d, "000003.jpg")


def test_depth_is_exact_z_of_front_surface():
    cam = camera.Camera(320, 240)
    for i in range(6):
        rng = np.random.default_rng([5, i])
        _, depth, objs, ids = scene.render(cam, rng)
        assert depth.shape == (240, 320) and depth.dtype == np.float32
        zs = [o.z for o in objs]
        assert zs == sorted(zs, reverse=True)  # painted far to near
        for k, o in enumerate(objs):
            own = ids == k + 1
            assert own.sum() > 0
            assert np.all(depth[own] == np.float32(o.z))
        # Background (floor / far wall) is never nearer than the camera's floor line allows.
        assert np.all(depth[ids == 0] >= camera.CAMERA_HEIGHT_M * 0.5)
        assert np.all(np.isfinite(depth)) and depth.max() <= camera.WALL_DEPTH_M


def test_occlusion_painter_order():
    cam = camera.Camera(320, 240)
    rng = np.random.default_rng([1, 2])
    _, _, objs, ids = scene.render(cam, rng)
    for k, o in enumerate(objs):
        sl = scene.paste_slices(o, 320, 240)
        if sl is None:
            continue
        covered = ids[sl[0]][o.mask[sl[1]]]
        # Every pixel of o's shape shows o or something nearer (drawn later), never farther.
        assert np.all((covered == k + 1) | (covered > k + 1))
        visible = (covered == k + 1).sum() / o.mask.sum()
        assert visible == pytest.approx(o.visible_fraction)


def test_ground_truth_boxes_and_depth_maps(scenes):
    paths, gt = scenes
    for r in gt:
        depth = np.load(f"{paths.depth_dir}/{r['file_name'][:-4]}.npy", allow_pickle=False)
        assert depth.shape == (r["height"], r["width"])
        x1, y1, x2, y2 = r["bbox_px"]
        assert 0 <= x1 < x2 <= r["width"] and 0 <= y1 < y2 <= r["height"]
        if r["is_truncated"]:  # cut by the border -> the box touches it
            assert x1 == 0 or y1 == 0 or x2 == r["width"] or y2 == r["height"]
        inside = depth[int(y1) : int(y2), int(x1) : int(x2)]
        # The object's own plane shows in its box at exactly its depth.
        assert np.any(inside == np.float32(r["true_depth"]))
        assert 0.2 <= r["visible_fraction"] <= 1.0


def test_person_keypoints_follow_facing(scenes):
    _, gt = scenes
    persons = [r for r in gt if r["category"] == "person" and r["visible_fraction"] == 1.0]
    assert {r["facing"] for r in persons} == {"toward", "away", "left", "right"}
    for r in persons:
        kp = np.asarray(r["keypoints"]).reshape(17, 3)
        ls, rs = kp[KP["left_shoulder"]], kp[KP["right_shoulder"]]
        lh, rh = kp[KP["left_hip"]], kp[KP["right_hip"]]
        face = kp[: KP["right_ear"] + 1]
        height = r["bbox_px"][3] - r["bbox_px"][1]
        if r["facing"] == "toward":
            assert ls[0] > rs[0] and lh[0] > rh[0]  # own left on the image right
            assert np.all(face[:, 2] > 0)
        elif r["facing"] == "away":
            assert ls[0] < rs[0] and lh[0] < rh[0]
            assert np.all(face[:, 2] == 0)
        else:
            assert abs(ls[0] - rs[0]) < 0.05 * height  # shoulders nearly overlap (vs 0.22 facing)
            mid = (ls[0] + rs[0]) / 2
            far_eye, near_eye = (
                ("right_eye", "left_eye") if r["facing"] == "left" else ("left_eye", "right_eye")
            )
            assert kp[KP[far_eye], 2] == 0 and kp[KP[near_eye], 2] > 0
            if r["facing"] == "left":
                assert kp[KP["nose"], 0] < mid
            else:
                assert kp[KP["nose"], 0] > mid


def test_rotated_images_store_raw_frame(scenes, tmp_path):
    paths, gt = scenes
    ann = json.loads(Path(paths.annotations).read_text())
    kps = json.loads(Path(paths.keypoints).read_text())
    images = {im["id"]: im for im in ann["images"]}
    gt_by_id = {r["object_id"]: r for r in gt}
    tags = Counter()
    for a in ann["annotations"]:
        g = gt_by_id[str(a["id"])]
        im = images[a["image_id"]]
        tag = g["exif_orientation"]
        tags[tag] += 1
        raw = xywh_to_xyxy(np.asarray([a["bbox"]]))
        np.testing.assert_allclose(
            orient_boxes(raw, tag, im["width"], im["height"])[0], g["bbox_px"], atol=1e-6
        )
    assert {1, 3, 6, 8} <= set(tags)
    for a in kps["annotations"]:
        g = gt_by_id[str(a["id"])]
        assert g["category"] == "person" and a["category_id"] == CATEGORY_IDS["person"]
        im = images[a["image_id"]]
        raw = np.asarray(a["keypoints"]).reshape(17, 3)
        want = np.asarray(g["keypoints"]).reshape(17, 3)
        vis = raw[:, 2] > 0
        assert a["num_keypoints"] == int(vis.sum())
        np.testing.assert_allclose(raw[:, 2], want[:, 2])
        got = orient_points(raw[vis, :2], g["exif_orientation"], im["width"], im["height"])
        np.testing.assert_allclose(got, want[vis, :2], atol=0.02)
    # Displayed pixels are the same scene as an unrotated render.
    plain = generate(tmp_path / "plain", 6, seed=3)
    for stem, tag in (("000003", 6), ("000006", 8)):
        raw_im = Image.open(f"{paths.images_dir}/{stem}.jpg")
        assert raw_im.getexif().get(0x0112) == tag
        assert raw_im.size == (480, 640)
        shown = np.asarray(ImageOps.exif_transpose(raw_im), np.int16)
        ref = np.asarray(Image.open(f"{plain.images_dir}/{stem}.jpg"), np.int16)
        assert shown.shape == ref.shape == (480, 640, 3)
        assert np.abs(shown - ref).mean() < 3.0


def test_to_raw_inverts_orient():
    boxes = np.asarray([[10.0, 20.0, 110.0, 70.0], [0.0, 0.0, 640.0, 480.0]])
    for tag in range(1, 9):
        ow, oh = (480, 640) if tag in (5, 6, 7, 8) else (640, 480)
        raw = to_raw_boxes(boxes * [ow / 640, oh / 480, ow / 640, oh / 480], tag, ow, oh)
        rw, rh = (oh, ow) if tag in (5, 6, 7, 8) else (ow, oh)
        back = orient_boxes(raw, tag, rw, rh)
        np.testing.assert_allclose(back, boxes * [ow / 640, oh / 480, ow / 640, oh / 480])


def test_ensure_generated_is_idempotent(tmp_path):
    src = SourceConfig(
        name="syn", format="synthetic", images=str(tmp_path / "syn"), num_images=3, seed=1
    )
    p1 = ensure_generated(src)
    marker = tmp_path / "syn" / synthetic.MARKER
    stamp = (marker.stat().st_mtime_ns, (tmp_path / "syn" / "annotations.json").stat().st_mtime_ns)
    p2 = ensure_generated(src)
    assert p1 == p2
    assert stamp == (
        marker.stat().st_mtime_ns,
        (tmp_path / "syn" / "annotations.json").stat().st_mtime_ns,
    )
    assert len(json.loads(Path(p1.annotations).read_text())["images"]) == 3
    src2 = SourceConfig(
        name="syn", format="synthetic", images=str(tmp_path / "syn"), num_images=2, seed=1
    )
    p3 = ensure_generated(src2)
    assert len(json.loads(Path(p3.annotations).read_text())["images"]) == 2
    assert sorted(p.name for p in (tmp_path / "syn" / "images").iterdir()) == [
        "000001.jpg",
        "000002.jpg",
    ]
    assert json.loads(marker.read_text())["num_images"] == 2
    with pytest.raises(ValueError, match="not 'synthetic'"):
        ensure_generated(
            SourceConfig(name="o", format="objects365", images=str(tmp_path), annotations="x.json")
        )


def test_images_decode_as_jpeg(scenes):
    paths, _ = scenes
    data = Path(paths.images_dir, "000001.jpg").read_bytes()
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.size == (640, 480)


def test_rotated_every_from_the_source_config(tmp_path):
    """A config's ``rotated_every`` reaches the generator (it used to be read with getattr from
    a field the config did not have, so it was always 0)."""
    src = SourceConfig(
        name="syn", format="synthetic", images=str(tmp_path / "syn"), num_images=4, rotated_every=2
    )
    paths = ensure_generated(src)
    tags = [Image.open(f"{paths.images_dir}/{i:06d}.jpg").getexif().get(0x0112) for i in (1, 2, 3, 4)]
    assert tags == [None, 6, None, 8]
    assert json.loads((tmp_path / "syn" / synthetic.MARKER).read_text())["rotated_every"] == 2
    with pytest.raises(ValueError, match="only used by format synthetic"):
        SourceConfig(name="o", format="objects365", images=".", annotations="a.json", rotated_every=2)
