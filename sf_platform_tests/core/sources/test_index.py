import io
import time

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core import schemas
from sf_platform.core.sources.index import (
    build_index,
    load_index_summary,
    read_shard,
    source_fingerprint,
)

from .helpers import (
    KEYPOINTS,
    O365,
    OI_CLASSES_NO_HEADER,
    OI_TRAIN,
    PIXMO_PARTS,
    coco_detection,
    read_all,
    write_json,
)


def _src(path, name="det", shard_size=4, **kw) -> SourceConfig:
    return SourceConfig(
        name=name,
        format="objects365",
        images="/data/det",
        annotations=str(path),
        shard_size=shard_size,
        **kw,
    )


def test_build_and_read_shards(store, tmp_path):
    path = write_json(tmp_path / "det.json", coco_detection(10, 3))
    summary = build_index(_src(path), store, S3Config())
    assert (summary.num_images, summary.num_objects, summary.num_quarantined) == (10, 30, 0)
    assert sorted(summary.shards) == ["00000", "00001", "00002"]
    assert load_index_summary(store, "det") == summary
    shard = read_shard(store, "det", "00001")
    assert shard.images.schema == schemas.RAW_IMAGES
    assert shard.objects.schema == schemas.OBJECTS
    assert shard.quarantine.schema == schemas.QUARANTINE
    assert shard.images.column("image_id").to_pylist() == ["5", "6", "7", "8"]
    assert set(shard.images.column("shard").to_pylist()) == {"00001"}
    assert shard.objects.num_rows == 12
    assert set(shard.objects.column("image_id").to_pylist()) == {"5", "6", "7", "8"}
    assert read_shard(store, "det", "00002").images.num_rows == 2
    with pytest.raises(KeyError):
        read_shard(store, "det", "00003")
    with pytest.raises(FileNotFoundError):
        read_shard(store, "nope", "00000")


def test_growth_keeps_old_shard_hashes(store, tmp_path):
    path = tmp_path / "det.json"
    write_json(path, coco_detection(8, 2))
    before = build_index(_src(path), store, S3Config())
    old = {k: read_shard(store, "det", k) for k in before.shards}
    grown = coco_detection(8, 2)
    extra = coco_detection(5, 2, first_image=8)
    grown["images"] += extra["images"]
    grown["annotations"] += extra["annotations"]
    write_json(path, grown)
    after = build_index(_src(path), store, S3Config())
    assert after.fingerprint != before.fingerprint
    assert sorted(after.shards) == ["00000", "00001", "00002", "00003"]
    for key, digest in before.shards.items():
        assert after.shards[key] == digest
        assert read_shard(store, "det", key).objects.equals(old[key].objects)
    assert read_shard(store, "det", "00003").images.column("image_id").to_pylist() == ["13"]


def test_a_changed_annotation_changes_only_its_shard(file_store, tmp_path):
    doc = coco_detection(8, 2)
    path = write_json(tmp_path / "det.json", doc)
    before = build_index(_src(path), file_store, S3Config())
    doc["annotations"][-1]["bbox"] = [1.0, 2.0, 3.0, 4.0]
    write_json(path, doc)
    after = build_index(_src(path), file_store, S3Config())
    assert after.shards["00000"] == before.shards["00000"]
    assert after.shards["00001"] != before.shards["00001"]


def test_many_shards_one_row_group_each(file_store, tmp_path):
    path = write_json(tmp_path / "det.json", coco_detection(300, 2))
    summary = build_index(_src(path, shard_size=1), file_store, S3Config())
    assert len(summary.shards) == 300
    objects_file = f"sources/det/index/{summary.fingerprint}/objects/00000.parquet"
    meta = pq.ParquetFile(io.BytesIO(file_store.read_bytes(objects_file))).metadata
    assert meta.num_row_groups == 300  # read_shard picks one of them by its statistics
    shard = read_shard(file_store, "det", "00123")
    assert shard.images.column("image_id").to_pylist() == ["124"]
    assert shard.objects.column("object_id").to_pylist() == ["12400", "12401"]


def test_fingerprint_follows_the_files(tmp_path):
    path = write_json(tmp_path / "det.json", coco_detection(2, 1))
    src = _src(path)
    first = source_fingerprint(src, S3Config())
    assert source_fingerprint(src, S3Config()) == first
    time.sleep(0.01)
    write_json(path, coco_detection(3, 1))
    assert source_fingerprint(src, S3Config()) != first
    assert source_fingerprint(_src(path, shard_size=7), S3Config()) != source_fingerprint(
        src, S3Config()
    )


def test_summary_fingerprint_tells_whether_to_reindex(file_store, tmp_path):
    """What the source sensor relies on: an unchanged source's fingerprint equals the one its
    index summary recorded; a changed annotation file's does not."""
    path = write_json(tmp_path / "det.json", coco_detection(3, 1))
    built = build_index(_src(path), file_store, S3Config())
    assert load_index_summary(file_store, "det").fingerprint == built.fingerprint
    assert source_fingerprint(_src(path), S3Config()) == built.fingerprint
    time.sleep(0.01)
    write_json(path, coco_detection(4, 1))
    assert source_fingerprint(_src(path), S3Config()) != built.fingerprint


def test_summary_last_and_old_versions_collected(file_store, tmp_path):
    path = tmp_path / "det.json"
    fingerprints = []
    for n in (2, 3, 4):
        write_json(path, coco_detection(n, 1))
        fingerprints.append(build_index(_src(path), file_store, S3Config()).fingerprint)
    folders = {k.split("/")[3] for k in file_store.list("sources/det/index") if k.count("/") > 3}
    assert folders == {fingerprints[1], fingerprints[2]}  # current + previous for in-flight readers
    assert load_index_summary(file_store, "det").previous_fingerprint == fingerprints[1]


def test_depth_maps_are_found_by_stem(file_store, tmp_path):
    path = write_json(tmp_path / "det.json", coco_detection(3, 1))
    depth = tmp_path / "depth" / "images"
    depth.mkdir(parents=True)
    np.save(depth / "000001.npy", np.ones((2, 2), np.float32))
    (tmp_path / "depth" / "000002.png").write_bytes(b"png")
    build_index(_src(path, depth=str(tmp_path / "depth")), file_store, S3Config())
    uris = read_shard(file_store, "det", "00000").images.column("depth_uri").to_pylist()
    assert uris == [f"{tmp_path}/depth/images/000001.npy", f"{tmp_path}/depth/000002.png", None]


def _upload(client, bucket: str, key: str, path) -> str:
    client.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def test_inputs_read_from_an_s3_bucket(s3_endpoint, s3_bucket, store):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    s3 = S3Config(endpoint_url=s3_endpoint)
    local = {
        "o365": _src(O365, name="o365", shard_size=3, keypoints=str(KEYPOINTS)),
        "oi": SourceConfig(
            name="oi",
            format="openimages",
            images="/data/det",
            annotations=str(OI_TRAIN),
            classes=str(OI_CLASSES_NO_HEADER),
            shard_size=2,
        ),
        "px": SourceConfig(
            name="px",
            format="pixmo",
            images="/data/det",
            annotations=str(PIXMO_PARTS),
            shard_size=2,
        ),
    }
    remote = {
        "o365": _src(
            _upload(client, s3_bucket, "in/o365.json", O365),
            name="o365",
            shard_size=3,
            keypoints=_upload(client, s3_bucket, "in/kp.json", KEYPOINTS),
        ),
        "oi": SourceConfig(
            name="oi",
            format="openimages",
            images="/data/det",
            annotations=_upload(client, s3_bucket, "in/oi.csv", OI_TRAIN),
            classes=_upload(client, s3_bucket, "in/classes.csv", OI_CLASSES_NO_HEADER),
            shard_size=2,
        ),
        "px": SourceConfig(
            name="px",
            format="pixmo",
            images="/data/det",
            shard_size=2,
            annotations=f"s3://{s3_bucket}/in/pixmo",
        ),
    }
    for part in sorted(PIXMO_PARTS.iterdir()):
        _upload(client, s3_bucket, f"in/pixmo/{part.name}", part)
    for name, local_src in local.items():
        want = build_index(local_src, store, S3Config()).shards
        got = build_index(remote[name], store, s3)
        assert got.shards == want, name
        assert got.num_objects > 0
    # An S3 file's fingerprint follows its ETag.
    before = source_fingerprint(remote["oi"], s3)
    client.put_object(Bucket=s3_bucket, Key="in/oi.csv", Body=OI_TRAIN.read_bytes() + b"\n")
    assert source_fingerprint(remote["oi"], s3) != before


def test_synthetic_source_is_indexed_like_objects365(file_store, tmp_path):
    src = SourceConfig(
        name="syn", format="synthetic", images=str(tmp_path / "syn"), num_images=3, shard_size=2
    )
    summary = build_index(src, file_store, S3Config())
    shard = read_all(file_store, "syn")
    assert summary.num_images == 3 and sorted(summary.shards) == ["00000", "00001"]
    assert summary.images_root == str(tmp_path / "syn" / "images")
    assert all(u and u.endswith(".npy") for u in shard.images.column("depth_uri").to_pylist())
    assert shard.objects.num_rows > 0
    persons = [
        o
        for o in shard.objects.to_pylist()
        if o["category"].lower() == "person" and not o["is_crowd"]
    ]
    assert persons and any(o["keypoints"] is not None for o in persons)
