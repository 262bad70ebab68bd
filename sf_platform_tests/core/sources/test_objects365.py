import pyarrow as pa
import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.sources.index import build_index, table_digest
from sf_platform.core.sources.objects365 import read_objects365
from sf_platform.core.sources.records import RAW_OBJECTS, Spill

from .helpers import O365, read_all, reasons


@pytest.fixture
def o365_index(file_store):
    src = SourceConfig(
        name="o365", format="objects365", images="/data/o365", annotations=str(O365), shard_size=3
    )
    summary = build_index(src, file_store, S3Config())
    return summary, read_all(file_store, "o365")


def test_reader_output_is_the_same_for_any_window_size(tmp_path):
    results = []
    for chunk in (61, 256, 8 << 20):
        spill = Spill(str(tmp_path), RAW_OBJECTS)
        rec = read_objects365(str(O365), spill, chunk_bytes=chunk)
        results.append((rec.images, spill.read_all(), rec.categories))
    for images, objects, cats in results[1:]:
        assert images.equals(results[0][0])
        assert table_digest(objects) == table_digest(results[0][1])  # NaN-safe comparison
        assert cats.equals(results[0][2])
    images, objects, cats = results[0]
    # Sections came annotations-first; every annotation and every image entry is there.
    assert objects.num_rows == 16
    assert images.column("image_id").to_pylist() == ["1", "2", "3", "2", "4", "5", "6"]


def test_category_names_are_fixed(tmp_path):
    rec = read_objects365(str(O365), Spill(str(tmp_path), RAW_OBJECTS))
    names = dict(
        zip(
            rec.categories.column("key").to_pylist(),
            rec.categories.column("name").to_pylist(),
            strict=True,
        )
    )
    assert names == {
        "1": "Person",
        "2": "Dining Table",
        "3": "Monitor/TV",
        "4": "Basket",
        "5": "Mushroom",
        "6": "Camel",
        "7": "Butterfly",
        "8": "Hot-air balloon",
        "9": "Chair",
    }


def test_boxes_flags_and_names_in_the_index(o365_index):
    _summary, shard = o365_index
    objs = {o["object_id"]: o for o in shard.objects.to_pylist()}
    assert sorted(objs) == ["101", "102", "103", "104", "110", "112", "115", "116"]
    assert objs["101"]["bbox_px"] == [100.0, 50.0, 180.0, 170.0]  # xywh -> xyxy
    assert objs["101"]["bbox_1000"] is None and objs["101"]["bbox_norm"] is None
    assert objs["102"]["category"] == "Dining Table"
    assert objs["104"]["category"] == "Monitor/TV"
    assert objs["110"]["category"] == "Hot-air balloon"
    assert objs["115"]["category"] == "Chair"
    assert objs["103"]["is_crowd"] is True and objs["101"]["is_crowd"] is False
    assert objs["104"]["is_fake"] is True and objs["104"]["is_reflected"] is True
    assert {o["provenance"] for o in objs.values()} == {"annotation"}
    assert {o["score"] for o in objs.values()} == {1.0}
    # Objects follow image order, then annotation order within the image.
    assert shard.objects.column("object_id").to_pylist() == [
        "101",
        "102",
        "103",
        "104",
        "116",
        "110",
        "112",
        "115",
    ]


def test_every_awkward_case_is_quarantined_with_its_reason(o365_index):
    summary, shard = o365_index
    r = reasons(shard.quarantine)
    assert r["105"] == "unknown_category"
    assert r["106"] == "nan_box"
    assert r["113"] == "nan_box"  # bbox with 3 numbers
    assert r["114"] == "nan_box"  # bbox with a null
    assert r["107"] == "degenerate_box"
    assert r["108"] == "degenerate_box"
    assert r["109"] == "unknown_image"
    assert r["111"] == "image_quarantined"
    image_rows = {
        (q["image_id"], q["reason"]) for q in shard.quarantine.to_pylist() if q["kind"] == "image"
    }
    assert image_rows == {("2", "duplicate_image_id"), ("4", "path_escape"), ("5", "path_escape")}
    assert summary.num_quarantined == shard.quarantine.num_rows == 11
    assert all(q["detail"] for q in shard.quarantine.to_pylist())


def test_duplicate_ids_keep_the_first_entry_and_its_annotations(o365_index):
    _, shard = o365_index
    images = shard.images.to_pylist()
    assert [i["image_id"] for i in images] == ["1", "2", "3", "6"]
    second = next(i for i in images if i["image_id"] == "2")
    assert second["file_name"] == "images/v2/patch0/objects365_v2_00000002.jpg"
    assert (second["width"], second["height"]) == (500, 375)
    assert (
        shard.objects.filter(pa.compute.equal(shard.objects.column("image_id"), "2")).num_rows == 1
    )


def test_shards_are_slices_of_the_image_list_including_rejected_entries(o365_index):
    summary, shard = o365_index
    assert sorted(summary.shards) == ["00000", "00001", "00002"]  # 7 entries / 3
    by_shard = {}
    for img in shard.images.to_pylist():
        by_shard.setdefault(img["shard"], []).append(img["image_id"])
    assert by_shard == {"00000": ["1", "2", "3"], "00002": ["6"]}
    q = {(r["image_id"], r["reason"]): r["shard"] for r in shard.quarantine.to_pylist()}
    assert q[("4", "path_escape")] == "00001"
    assert q[("999", "unknown_image")] == "00000"  # rows about no listed image go to shard 00000
