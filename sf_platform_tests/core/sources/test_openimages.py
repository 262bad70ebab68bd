import pyarrow.compute as pc
import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.sources.index import build_index
from sf_platform.core.sources.openimages import read_class_descriptions

from .helpers import OI_CLASSES_HEADER, OI_CLASSES_NO_HEADER, OI_TRAIN, OI_VAL, read_all, reasons

A, B, C = "000002b66c9c498e", "000002b97e5471a0", "00000c4e3d8a7b21"


def _index(store, boxes, classes, shard_size=2):
    src = SourceConfig(
        name="oi",
        format="openimages",
        images="/data/oi",
        annotations=str(boxes),
        classes=str(classes),
        shard_size=shard_size,
    )
    summary = build_index(src, store, S3Config())
    return summary, read_all(store, "oi")


def test_class_descriptions_with_and_without_header():
    plain = read_class_descriptions(str(OI_CLASSES_NO_HEADER))
    header = read_class_descriptions(str(OI_CLASSES_HEADER))
    assert plain.column("key").to_pylist()[0] == "/m/01g317"  # first row is data, not a header
    assert header.column("key").to_pylist()[0] == "/m/01g317"  # header row dropped
    assert plain.num_rows == header.num_rows == 6
    assert (
        dict(zip(*[header.column(c).to_pylist() for c in ("key", "name")], strict=True))["/m/02wbm"]
        == "Food, drink"
    )


def test_train_file_with_xclick_columns(file_store):
    _summary, shard = _index(file_store, OI_TRAIN, OI_CLASSES_NO_HEADER)
    # Images in order of first appearance; file_name from the ImageID; no annotated size.
    assert shard.images.column("image_id").to_pylist() == [A, B, C]
    assert shard.images.column("file_name").to_pylist() == [f"{A}.jpg", f"{B}.jpg", f"{C}.jpg"]
    assert shard.images.column("width").null_count == 3
    objs = {o["object_id"]: o for o in shard.objects.to_pylist()}
    assert sorted(objs) == [f"{A}-0", f"{A}-1", f"{A}-2", f"{B}-0", f"{B}-2"]
    # XMin,XMax,YMin,YMax in the CSV -> [x1, y1, x2, y2] normalized.
    assert objs[f"{A}-0"]["bbox_norm"] == pytest.approx([0.0125, 0.148438, 0.195312, 0.5875])
    assert objs[f"{A}-0"]["bbox_px"] is None
    assert objs[f"{A}-0"]["category"] == "Person"
    a0, a1, b0 = objs[f"{A}-0"], objs[f"{A}-1"], objs[f"{B}-0"]
    assert (a0["is_occluded"], a0["is_truncated"], a0["is_group"]) == (False, True, False)
    assert (a1["is_occluded"], a1["is_group"], a1["is_depiction"]) == (
        True,
        True,
        None,
    )  # -1 -> null
    assert objs[f"{A}-2"]["is_depiction"] is True and objs[f"{A}-2"]["is_inside"] is True
    assert [
        b0[f] for f in ("is_occluded", "is_truncated", "is_group", "is_depiction", "is_inside")
    ] == [None] * 5
    r = reasons(shard.quarantine)
    assert r[f"{B}-1"] == "unknown_category"
    assert r[f"{C}-0"] == "nan_box" and r[f"{C}-3"] == "nan_box"  # "nan" and empty
    assert r[f"{C}-1"] == "degenerate_box" and r[f"{C}-2"] == "degenerate_box"
    assert r["../escape-0"] == "image_quarantined"
    assert any(
        q["reason"] == "path_escape" and q["kind"] == "image" for q in shard.quarantine.to_pylist()
    )


def test_validation_file_without_xclick_columns_and_header_classes(file_store):
    _, shard = _index(file_store, OI_VAL, OI_CLASSES_HEADER)
    objs = {o["object_id"]: o for o in shard.objects.to_pylist()}
    assert sorted(objs) == ["0001eeaf4aed83f9-0", "0001eeaf4aed83f9-1", "000595fe6fee6369-0"]
    assert objs["0001eeaf4aed83f9-0"]["category"] == "Airplane"
    assert objs["000595fe6fee6369-0"]["category"] == "Food, drink"
    assert objs["000595fe6fee6369-0"]["is_group"] is True
    assert objs["0001eeaf4aed83f9-1"]["is_inside"] is None
    assert reasons(shard.quarantine) == {"0001eeaf4aed83f9-2": "unknown_category"}


def test_object_ids_are_stable_across_reindexing(file_store, tmp_path):
    _, first = _index(file_store, OI_TRAIN, OI_CLASSES_NO_HEADER)
    grown = tmp_path / "grown.csv"
    grown.write_text(
        OI_TRAIN.read_text()
        + "ffff000000000001,xclick,/m/01g317,1,0.1,0.2,0.1,0.2,0,0,0,0,0,-1,-1,-1,-1,-1,-1,-1,-1\n"
    )
    _, second = _index(file_store, grown, OI_CLASSES_NO_HEADER)
    old = first.objects.column("object_id").to_pylist()
    new = second.objects.column("object_id").to_pylist()
    assert new[: len(old)] == old and new[-1] == "ffff000000000001-0"


def test_missing_columns_give_a_clear_error(file_store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ImageID,LabelName,XMin,YMin\nx,/m/01g317,0.1,0.2\n")
    with pytest.raises(ValueError, match="XMax"):
        _index(file_store, bad, OI_CLASSES_NO_HEADER)


def test_every_object_is_accounted_for(file_store):
    _summary, shard = _index(file_store, OI_TRAIN, OI_CLASSES_NO_HEADER)
    object_rows = pc.sum(pc.equal(shard.quarantine.column("kind"), "object")).as_py()
    assert shard.objects.num_rows + object_rows == 11  # CSV rows
