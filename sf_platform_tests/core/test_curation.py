"""Shard curation: every bad-input rule, EXIF frames against the synthetic oracle, S3, accounting."""

from __future__ import annotations

import io
import json
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sf_platform.config import S3Config
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000, xywh_to_xyxy
from sf_platform.core.curation import curate_shard
from sf_platform.core.object_geometry import annotation_orientation
from sf_platform.core.paths import safe_relative_path
from sf_platform.synthetic import generate, to_raw_points

SOURCE, SHARD = "syn", "00000"


# --- helpers -----------------------------------------------------------------------------
def raw_from_synthetic(paths, depth: bool = True, frame: str = "raw"):
    """What a reader yields for the synthetic source (Objects365 JSON + COCO keypoints)."""
    ann = json.loads(Path(paths.annotations).read_text())
    kps = {
        a["id"]: a["keypoints"]
        for a in json.loads(Path(paths.keypoints).read_text())["annotations"]
    }
    names = {c["id"]: c["name"] for c in ann["categories"]}
    gt = {r["object_id"]: r for r in pq.read_table(paths.ground_truth).to_pylist()}
    images = []
    for im in ann["images"]:
        stem = im["file_name"][:-4]
        w, h = im["width"], im["height"]
        if frame == "oriented":  # as if annotated on the displayed image
            g = next(r for r in gt.values() if r["image_id"] == str(im["id"]))
            w, h = g["width"], g["height"]
        images.append(
            {
                "source": SOURCE,
                "shard": SHARD,
                "image_id": str(im["id"]),
                "file_name": im["file_name"],
                "width": w,
                "height": h,
                "depth_uri": f"{paths.depth_dir}/{stem}.npy" if depth else None,
            }
        )
    objects = []
    for a in ann["annotations"]:
        oid = str(a["id"])
        box = xywh_to_xyxy(np.asarray([a["bbox"]]))[0].tolist()
        kp = kps.get(a["id"])
        if frame == "oriented":
            box = gt[oid]["bbox_px"]
            kp = gt[oid]["keypoints"]
        objects.append(
            {
                "source": SOURCE,
                "shard": SHARD,
                "object_id": oid,
                "image_id": str(a["image_id"]),
                "category": names[a["category_id"]],
                "bbox_px": box,
                "is_crowd": bool(a["iscrowd"]),
                "score": 1.0,
                "provenance": "annotation",
                "keypoints": kp,
            }
        )
    return (
        pa.Table.from_pylist(images, schema=schemas.RAW_IMAGES),
        pa.Table.from_pylist(objects, schema=schemas.OBJECTS),
    )


def assert_accounted(raw_images: pa.Table, raw_objects: pa.Table, raw_q: pa.Table, out) -> None:
    """Every input image / object is in the output or in quarantine, exactly once."""
    new_q = out.quarantine.slice(raw_q.num_rows).to_pylist()
    assert out.quarantine.slice(0, raw_q.num_rows).equals(
        schemas.conform(raw_q, schemas.QUARANTINE)
    )
    q_images = [q["image_id"] for q in new_q if q["kind"] == "image"]
    q_objects = [q["object_id"] for q in new_q if q["kind"] == "object"]
    assert Counter(out.images.column("image_id").to_pylist()) + Counter(q_images) == Counter(
        raw_images.column("image_id").to_pylist()
    )
    assert Counter(out.objects.column("object_id").to_pylist()) + Counter(q_objects) == Counter(
        raw_objects.column("object_id").to_pylist()
    )
    for q in new_q:
        assert q["reason"] and q["detail"] and q["source"] == SOURCE


def encode(im: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(w: int = 120, h: int = 80) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def bomb_png(w: int, h: int) -> bytes:
    import zlib

    data = bytearray(encode(photo(8, 8), "PNG"))
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def obj(object_id: str, image_id: str, bbox_px=None, **kw) -> dict:
    return {
        "source": SOURCE,
        "shard": SHARD,
        "object_id": object_id,
        "image_id": image_id,
        "category": "thing",
        "bbox_px": bbox_px,
        "provenance": "annotation",
        **kw,
    }


def img(image_id: str, file_name: str, w=None, h=None, depth_uri=None) -> dict:
    return {
        "source": SOURCE,
        "shard": SHARD,
        "image_id": image_id,
        "file_name": file_name,
        "width": w,
        "height": h,
        "depth_uri": depth_uri,
    }


def reasons(out, kind: str) -> dict[str, str]:
    """id -> reason of the quarantine rows of ``kind`` (object id for objects, else image id)."""
    key = "object_id" if kind == "object" else "image_id"
    return {q[key]: q["reason"] for q in out.quarantine.to_pylist() if q["kind"] == kind}


# --- the synthetic oracle: EXIF-rotated photos -------------------------------------------
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    paths = generate(tmp_path_factory.mktemp("syn"), 9, seed=7, rotated_every=3)  # tags 6, 8, 3
    gt = pq.read_table(paths.ground_truth).to_pylist()
    return paths, gt


def check_against_ground_truth(out, gt) -> None:
    objs = {r["object_id"]: r for r in out.objects.to_pylist()}
    images = {r["image_id"]: r for r in out.images.to_pylist()}
    assert set(objs) == {g["object_id"] for g in gt}
    tags = set()
    for g in gt:
        o, im = objs[g["object_id"]], images[g["image_id"]]
        assert (im["width"], im["height"], im["exif_orientation"]) == (
            g["width"],
            g["height"],
            g["exif_orientation"],
        )
        tags.add(im["exif_orientation"])
        np.testing.assert_allclose(o["bbox_px"], g["bbox_px"], atol=1e-6)
        assert (
            o["bbox_1000"]
            == px_to_1000(np.asarray([g["bbox_px"]]), g["width"], g["height"])[0].tolist()
        )
        if g["keypoints"] is not None:
            np.testing.assert_allclose(o["keypoints"], g["keypoints"], atol=0.02)
        assert o["is_truncated"] is False  # boxes inside the photo are not clipped
    assert tags == {1, 3, 6, 8}


def test_exif_rotated_boxes_match_ground_truth(synth):
    paths, gt = synth
    raw_images, raw_objects = raw_from_synthetic(paths)
    out = curate_shard(
        raw_images, raw_objects, schemas.empty(schemas.QUARANTINE), paths.images_dir, workers=3
    )
    assert out.quarantine.num_rows == 0
    assert out.images.schema == schemas.IMAGES and out.objects.schema == schemas.OBJECTS
    check_against_ground_truth(out, gt)
    im = out.images.to_pylist()[0]
    assert im["image_uri"].startswith("file:///") and im["image_uri"].endswith("/000001.jpg")
    assert (
        im["mode"] == "RGB" and len(im["sha256"]) == 64 and im["depth_uri"].endswith("000001.npy")
    )
    assert_accounted(raw_images, raw_objects, schemas.empty(schemas.QUARANTINE), out)


def test_annotations_already_oriented_are_kept(synth):
    paths, gt = synth
    raw_images, raw_objects = raw_from_synthetic(paths, frame="oriented")
    q0 = schemas.empty(schemas.QUARANTINE)
    check_against_ground_truth(
        curate_shard(raw_images, raw_objects, q0, paths.images_dir, annotation_frame="oriented"), gt
    )
    # A source that declares "raw": for 90-degree tags the oriented dims still decide (kept
    # as they are); a 180-degree photo has the same dims in both frames, so the declared
    # frame wins and its boxes get rotated -- the documented limit of the rule.
    out = curate_shard(raw_images, raw_objects, q0, paths.images_dir, annotation_frame="raw")
    objs = {r["object_id"]: r for r in out.objects.to_pylist()}
    for g in gt:
        box = objs[g["object_id"]]["bbox_px"]
        if g["exif_orientation"] == 3:
            x1, y1, x2, y2 = g["bbox_px"]
            np.testing.assert_allclose(box, [640 - x2, 480 - y2, 640 - x1, 480 - y1], atol=1e-6)
        else:
            np.testing.assert_allclose(box, g["bbox_px"], atol=1e-6)
    # Without dims the declared frame decides everywhere.
    no_dims = raw_images.set_column(4, "width", pa.nulls(raw_images.num_rows, pa.int32()))
    check_against_ground_truth(
        curate_shard(no_dims, raw_objects, q0, paths.images_dir, annotation_frame="oriented"), gt
    )


def test_annotation_orientation_rule():
    # stored 640x480 with tag 6 -> displayed 480x640
    assert annotation_orientation(6, 640, 480, 640, 480, "oriented") == 6  # raw dims: map
    assert annotation_orientation(6, 640, 480, 480, 640, "raw") == 1  # oriented dims: keep
    assert annotation_orientation(6, 640, 480, 800, 600, "raw") is None  # neither
    assert annotation_orientation(3, 640, 480, 640, 480, "raw") == 3  # ambiguous -> declared
    assert annotation_orientation(3, 640, 480, 640, 480, "oriented") == 1
    assert annotation_orientation(6, 500, 500, None, None, "raw") == 6


def test_annotation_size_mismatch(synth):
    paths, _ = synth
    raw_images, raw_objects = raw_from_synthetic(paths, depth=False)
    wrong = raw_images.set_column(4, "width", pa.array([1000] * raw_images.num_rows, pa.int32()))
    out = curate_shard(wrong, raw_objects, schemas.empty(schemas.QUARANTINE), paths.images_dir)
    assert out.images.num_rows == raw_images.num_rows and out.objects.num_rows == 0
    assert set(reasons(out, "object").values()) == {"annotation_size_mismatch"}
    assert_accounted(wrong, raw_objects, schemas.empty(schemas.QUARANTINE), out)


def test_reads_images_from_s3(synth, s3_endpoint, s3_bucket):
    import boto3

    paths, gt = synth
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for p in Path(paths.images_dir).iterdir():
        client.put_object(Bucket=s3_bucket, Key=f"data/images/{p.name}", Body=p.read_bytes())
    raw_images, raw_objects = raw_from_synthetic(paths, depth=False)
    # One depth map on S3 as well, one image missing from the bucket.
    buf = io.BytesIO()
    np.save(buf, np.load(f"{paths.depth_dir}/000002.npy"), allow_pickle=False)
    client.put_object(Bucket=s3_bucket, Key="data/depth/000002.npy", Body=buf.getvalue())
    client.delete_object(Bucket=s3_bucket, Key="data/images/000009.jpg")
    rows = raw_images.to_pylist()
    rows[1]["depth_uri"] = f"s3://{s3_bucket}/data/depth/000002.npy"
    raw_images = pa.Table.from_pylist(rows, schema=schemas.RAW_IMAGES)
    out = curate_shard(
        raw_images,
        raw_objects,
        schemas.empty(schemas.QUARANTINE),
        f"s3://{s3_bucket}/data/images",
        s3=S3Config(endpoint_url=s3_endpoint),
        workers=4,
    )
    assert reasons(out, "image") == {"9": "missing_image"}
    assert all(
        u.startswith(f"s3://{s3_bucket}/data/images/")
        for u in out.images.column("image_uri").to_pylist()
    )
    assert (
        out.images.column("depth_uri").to_pylist()[1] == f"s3://{s3_bucket}/data/depth/000002.npy"
    )
    check_against_ground_truth_subset = [g for g in gt if g["image_id"] != "9"]
    objs = {r["object_id"]: r for r in out.objects.to_pylist()}
    for g in check_against_ground_truth_subset:
        np.testing.assert_allclose(objs[g["object_id"]]["bbox_px"], g["bbox_px"], atol=1e-6)
    assert set(reasons(out, "object").values()) == {"image_rejected"}
    assert_accounted(raw_images, raw_objects, schemas.empty(schemas.QUARANTINE), out)


# --- every bad input in one shard --------------------------------------------------------
@pytest.fixture
def messy(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (tmp_path / "secret.jpg").write_bytes(encode(photo()))  # outside the root
    good = encode(photo(120, 80))
    files = {
        "good.jpg": good,
        "empty.jpg": b"",
        "truncated.jpg": encode(photo(400, 300), quality=95)[:5000],
        "text.jpg": b"<html>403 Forbidden</html>",
        "bomb.png": bomb_png(30000, 30000),
        "pixel.png": encode(Image.new("RGB", (1, 1)), "PNG"),
        "gray16.png": encode(Image.fromarray(np.full((80, 120), 30000, np.uint16)), "PNG"),
        "cmyk.jpg": encode(photo().convert("CMYK")),
        "palette.png": encode(photo().convert("P"), "PNG"),
        "gray.png": encode(photo().convert("L"), "PNG"),
        "rgba.png": encode(photo().convert("RGBA"), "PNG"),
        "sub/dir/nested.jpg": good,
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    depth = tmp_path / "depth"
    depth.mkdir()

    def dmap(name, arr):
        np.save(depth / name, arr, allow_pickle=False)
        return str(depth / name)

    ok = np.ones((80, 120), np.float32)
    with_inf = ok.copy()
    with_inf[0, 0] = np.inf
    mostly_nan = np.full((80, 120), np.nan, np.float32)
    images = [
        img("good", "good.jpg", 120, 80, depth_uri=dmap("ok.npy", ok)),
        img("empty", "empty.jpg"),
        img("truncated", "truncated.jpg"),
        img("text", "text.jpg"),
        img("bomb", "bomb.png"),
        img("pixel", "pixel.png"),
        img(
            "gray16",
            "gray16.png",
            depth_uri=dmap("wrong_shape.npy", np.ones((120, 80), np.float32)),
        ),
        img("cmyk", "cmyk.jpg", depth_uri=dmap("inf.npy", with_inf)),
        img("palette", "palette.png", depth_uri=dmap("nan.npy", mostly_nan)),
        img("gray", "gray.png", depth_uri=str(depth / "absent.npy")),
        img("rgba", "rgba.png"),
        img("nested", "sub/./dir/../dir/nested.jpg"),
        img("missing", "nope.jpg"),
        img("escape", "../secret.jpg"),
        img("escape2", "sub/../../secret.jpg"),
        img("absolute", str(tmp_path / "secret.jpg")),
        img("good", "good.jpg"),  # duplicate id
    ]
    nan = float("nan")
    objects = [
        obj("ok", "good", [10, 10, 50, 40]),
        obj("partly_out", "good", [100, 60, 121.5, 81.5]),  # rounding overshoot: clipped
        obj("far_out", "good", [100, 60, 150, 100]),  # 30 px beyond a 120 px side: not clipped
        obj("outside", "good", [130, 10, 160, 40]),
        obj("outside_neg", "good", [-50, -40, -10, -5]),
        obj("zero", "good", [10, 10, 10, 40]),
        obj("negative", "good", [50, 10, 20, 40]),
        obj("sliver", "good", [119.5, 10, 121, 40]),  # 0.5 px wide once clipped
        obj("nan", "good", [nan, 10, 50, 40]),
        obj("norm", "good", None, bbox_norm=[0.25, 0.5, 0.75, 1.0]),
        obj("norm_nan", "good", None, bbox_norm=[nan, 0.5, 0.75, 1.0]),
        obj("points", "good", None, points=[{"x": 5.0, "y": 5.0}, {"x": 120.4, "y": 80.0}]),
        obj("points_out", "good", None, points=[{"x": 500.0, "y": 5.0}]),
        obj("nothing", "good", None),
        obj("ok", "good", [1, 1, 5, 5]),  # duplicate id
        obj("on_empty", "empty", [1, 1, 5, 5]),
        obj("on_escape", "escape", [1, 1, 5, 5]),
        obj("on_gray16", "gray16", [1, 1, 5, 5]),
        obj("orphan", "no_such_image", [1, 1, 5, 5]),
    ]
    raw_q = pa.Table.from_pylist(
        [
            {
                "source": SOURCE,
                "shard": SHARD,
                "kind": "object",
                "image_id": "x",
                "object_id": "r1",
                "reason": "unknown_category",
                "detail": "reader-level rejection",
            }
        ],
        schema=schemas.QUARANTINE,
    )
    return (
        root,
        pa.Table.from_pylist(images, schema=schemas.RAW_IMAGES),
        pa.Table.from_pylist(objects, schema=schemas.OBJECTS),
        raw_q,
    )


def test_bad_images_are_quarantined_with_reasons(messy):
    root, raw_images, raw_objects, raw_q = messy
    out = curate_shard(raw_images, raw_objects, raw_q, str(root), workers=4)
    assert reasons(out, "image") == {
        "empty": "empty_file",
        "truncated": "truncated_image",
        "text": "not_an_image",
        "bomb": "decompression_bomb",
        "pixel": "too_small",
        "missing": "missing_image",
        "escape": "path_escape",
        "escape2": "path_escape",
        "absolute": "path_escape",
        "good": "duplicate_image",
    }
    kept = {r["image_id"]: r for r in out.images.to_pylist()}
    assert set(kept) == {"good", "gray16", "cmyk", "palette", "gray", "rgba", "nested"}
    assert {k: kept[k]["mode"] for k in ("gray16", "cmyk", "palette", "gray", "rgba")} == {
        "gray16": "I;16",
        "cmyk": "CMYK",
        "palette": "P",
        "gray": "L",
        "rgba": "RGBA",
    }
    for r in kept.values():
        assert (r["width"], r["height"]) == (120, 80) and r["exif_orientation"] == 1
    assert kept["nested"]["image_uri"] == "file://" + str(root / "sub/dir/nested.jpg")
    assert_accounted(raw_images, raw_objects, raw_q, out)


def test_bad_depth_maps_drop_the_map_not_the_image(messy):
    root, raw_images, raw_objects, raw_q = messy
    out = curate_shard(raw_images, raw_objects, raw_q, str(root))
    assert reasons(out, "depth") == {
        "gray16": "depth_shape_mismatch",
        "cmyk": "depth_non_finite",
        "palette": "depth_non_finite",
        "gray": "depth_missing",  # the depth_uri names a file that is not there
    }
    depth = {r["image_id"]: r["depth_uri"] for r in out.images.to_pylist()}
    assert depth["good"].endswith("ok.npy")
    assert all(depth[k] is None for k in ("gray16", "cmyk", "palette", "gray"))
    # A source that gives depth maps: a kept image without any map is recorded too.
    given = curate_shard(raw_images, raw_objects, raw_q, str(root), gives_depth=True)
    unmapped = {k for k, uri in depth.items() if uri is None} - set(reasons(out, "depth"))
    assert unmapped and reasons(given, "depth") == reasons(out, "depth") | dict.fromkeys(unmapped, "depth_missing")
    assert given.images.equals(out.images)


def test_bad_boxes(messy):
    root, raw_images, raw_objects, raw_q = messy
    out = curate_shard(raw_images, raw_objects, raw_q, str(root))
    got = reasons(out, "object")
    assert got == {
        "r1": "unknown_category",  # the reader's row, carried through
        "outside": "box_outside_image",
        "outside_neg": "box_outside_image",
        "far_out": "box_outside_image",
        "zero": "degenerate_box",
        "negative": "degenerate_box",
        "sliver": "degenerate_box",
        "nan": "nan_box",
        "norm_nan": "nan_box",
        "points_out": "point_outside_image",
        "nothing": "no_geometry",
        "ok": "duplicate_object",
        "on_empty": "image_rejected",
        "on_escape": "image_rejected",
        "orphan": "unknown_image",
    }
    objs = {r["object_id"]: r for r in out.objects.to_pylist()}
    assert set(objs) == {"ok", "partly_out", "norm", "points", "on_gray16"}
    assert objs["ok"]["bbox_px"] == [10, 10, 50, 40] and objs["ok"]["is_truncated"] is False
    assert objs["ok"]["bbox_1000"] == [83, 125, 417, 500]
    assert (
        objs["partly_out"]["bbox_px"] == [100, 60, 120, 80]
        and objs["partly_out"]["is_truncated"] is True
    )
    assert objs["norm"]["bbox_px"] == [30, 40, 90, 80] and objs["norm"]["bbox_1000"] == [
        250,
        500,
        750,
        1000,
    ]
    assert objs["points"]["bbox_px"] is None and objs["points"]["bbox_1000"] is None
    assert objs["points"]["points"] == [{"x": 5.0, "y": 5.0}, {"x": 120.0, "y": 80.0}]
    detail = {
        q["object_id"]: q["detail"] for q in out.quarantine.to_pylist() if q["kind"] == "object"
    }
    assert "empty_file" in detail["on_empty"]
    assert_accounted(raw_images, raw_objects, raw_q, out)


def test_safe_relative_path():
    assert safe_relative_path("a/./b/../c.jpg") == "a/c.jpg"
    for bad in (
        "../x.jpg",
        "a/../../x.jpg",
        "/etc/passwd",
        "..\\x.jpg",
        "s3://b/k.jpg",
        "C:/x.jpg",
        "a\x00.jpg",
        "..",
    ):
        with pytest.raises(Exception) as e:
            safe_relative_path(bad)
        assert e.value.reason == "path_escape"


def test_empty_shard():
    out = curate_shard(
        schemas.empty(schemas.RAW_IMAGES),
        schemas.empty(schemas.OBJECTS),
        schemas.empty(schemas.QUARANTINE),
        "/nowhere",
    )
    assert out.images.num_rows == out.objects.num_rows == out.quarantine.num_rows == 0
    assert out.images.schema == schemas.IMAGES


def test_rotated_points_follow_the_photo(tmp_path):
    """PixMo-style point objects on an EXIF-rotated photo land on the displayed pixel."""
    shown = np.zeros((80, 120, 3), np.uint8)
    shown[10:20, 90:100] = 255  # a white square near the top right as displayed
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)  # stored pixels
    (tmp_path / "r.jpg").write_bytes(encode(raw, quality=95, exif=exif.tobytes()))
    p_raw = to_raw_points(np.asarray([[95.0, 15.0]]), 6, 120, 80)[0]
    raw_images = pa.Table.from_pylist([img("r", "r.jpg", 80, 120)], schema=schemas.RAW_IMAGES)
    raw_objects = pa.Table.from_pylist(
        [obj("p", "r", None, points=[{"x": float(p_raw[0]), "y": float(p_raw[1])}])],
        schema=schemas.OBJECTS,
    )
    out = curate_shard(raw_images, raw_objects, schemas.empty(schemas.QUARANTINE), str(tmp_path))
    pt = out.objects.to_pylist()[0]["points"][0]
    assert (pt["x"], pt["y"]) == pytest.approx((95.0, 15.0))
    assert (out.images.column("width")[0].as_py(), out.images.column("height")[0].as_py()) == (
        120,
        80,
    )


def test_lost_objects_mark_their_category_incomplete(tmp_path):
    """B2: an image that keeps its photo but loses an object records which category lost it.

    Curation's own rejects (degenerate box, box outside the image) and the reader's object
    rejects (with a recorded category) mark that category; a reader reject without a recorded
    category marks the whole image; an unknown-category reject marks nothing.
    """
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"{name}.jpg").write_bytes(encode(photo(800, 600)))
    raw_images = pa.Table.from_pylist(
        [img(k, f"{k}.jpg", 800, 600) for k in ("a", "b", "c", "d")], schema=schemas.RAW_IMAGES
    )
    raw_objects = pa.Table.from_pylist(
        [
            obj("a1", "a", [10.0, 10.0, 100.0, 200.0], category="Chair"),
            obj("a2", "a", [300.0, 10.0, 400.0, 200.0], category="Chair"),
            obj("a3", "a", [500.0, 300.0, 500.0, 400.0], category="Chair"),  # zero width
            obj("a4", "a", [900.0, 10.0, 950.0, 50.0], category="Chair"),  # outside 800x600
            obj("a5", "a", [600.0, 100.0, 700.0, 500.0], category="Lamp"),
            obj("b1", "b", [10.0, 10.0, 100.0, 200.0], category="Dog"),
            obj("c1", "c", [10.0, 10.0, 100.0, 200.0], category="Dog"),
            obj("d1", "d", [10.0, 10.0, 100.0, 200.0], category="Dog"),
        ],
        schema=schemas.OBJECTS,
    )

    def reader_reject(object_id, image_id, reason, category=None):
        return {"source": SOURCE, "shard": SHARD, "kind": "object", "image_id": image_id,
                "object_id": object_id, "reason": reason, "detail": "-", "category": category}

    raw_q = pa.Table.from_pylist(
        [
            reader_reject("b2", "b", "nan_box", "Cat"),
            reader_reject("c2", "c", "degenerate_box"),  # category not recorded
            reader_reject("d2", "d", "unknown_category"),
        ],
        schema=schemas.QUARANTINE,
    )
    out = curate_shard(raw_images, raw_objects, raw_q, str(tmp_path))
    assert reasons(out, "object") == {
        "a3": "degenerate_box",
        "a4": "box_outside_image",
        "b2": "nan_box",
        "c2": "degenerate_box",
        "d2": "unknown_category",
    }
    q = {r["object_id"]: r["category"] for r in out.quarantine.to_pylist()}
    assert q["a3"] == q["a4"] == "Chair"  # curation records the category it quarantined
    images = {r["image_id"]: r for r in out.images.to_pylist()}
    got = {k: (r["incomplete_categories"], r["all_categories_incomplete"]) for k, r in images.items()}
    assert got == {
        "a": (["Chair"], False),
        "b": (["Cat"], False),
        "c": ([], True),
        "d": ([], False),
    }


def test_unmatched_keypoints_make_the_person_category_incomplete():
    """A keypoint skeleton with no person box may be a person nobody boxed: 'how many people'
    over the boxed ones could be false, so the image's person category is not clean."""
    from sf_platform.core.curation import incomplete_categories

    q = pa.Table.from_pylist(
        [{"kind": "keypoints", "image_id": "7", "reason": "unmatched_keypoints", "category": None},
         {"kind": "keypoints", "image_id": "8", "reason": "unmatched_keypoints", "category": None}],
        schema=schemas.QUARANTINE,
    )
    per, whole = incomplete_categories(q, {"7": {"Person"}})
    assert per == {"7": {"Person"}, "8": set()} and whole == set()


def test_a_missing_image_is_counted(tmp_path):
    """One missing photo: the shard is curated without it and says so (``missing_images``),
    which is what makes the planner re-curate it later (defs/test_regeneration.py)."""
    Image.new("RGB", (64, 48), (1, 2, 3)).save(tmp_path / "a.jpg")
    images = pa.Table.from_pylist(
        [img("a", "a.jpg"), img("b", "b.jpg")], schema=schemas.RAW_IMAGES
    )
    out = curate_shard(images, schemas.empty(schemas.OBJECTS), schemas.empty(schemas.QUARANTINE), str(tmp_path))
    assert out.missing_images == 1 and out.images.column("image_id").to_pylist() == ["a"]
