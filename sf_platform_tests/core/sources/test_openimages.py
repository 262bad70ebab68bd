import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core import schemas
from sf_platform.core.curation import curate_shard
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.scene import build_scene
from sf_platform.core.sources.index import build_index
from sf_platform.core.sources.openimages import (
    read_class_descriptions,
    read_hierarchy,
    read_openimages,
)
from sf_platform.core.sources.records import RAW_OBJECTS, Spill

from .helpers import (
    FIXTURES,
    OI_CLASSES_HEADER,
    OI_CLASSES_NO_HEADER,
    OI_TRAIN,
    OI_VAL,
    read_all,
    reasons,
)

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
    # IsDepiction -1: unknown, read as "possibly a depiction" (True) so QA never counts it.
    assert (a1["is_occluded"], a1["is_group"], a1["is_depiction"]) == (True, True, True)
    assert objs[f"{A}-2"]["is_depiction"] is True and objs[f"{A}-2"]["is_inside"] is True
    # All -1: group/depiction/truncated unknown -> True; occluded/inside unknown -> null.
    assert [
        b0[f] for f in ("is_occluded", "is_truncated", "is_group", "is_depiction", "is_inside")
    ] == [None, True, True, True, None]
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


# --- B3 / B4: unknown flags and the class hierarchy, through scene to QA -------------------
OI_HIERARCHY = FIXTURES / "openimages" / "bbox_labels_600_hierarchy.json"
OI_HIERARCHY_CLASSES = FIXTURES / "openimages" / "class-descriptions-hierarchy.csv"
OI_HIERARCHY_BOXES = FIXTURES / "openimages" / "hierarchy-annotations-bbox.csv"


def test_hierarchy_gives_ancestors_by_subcategory_only():
    classes = read_class_descriptions(str(OI_HIERARCHY_CLASSES))
    h = read_hierarchy(str(OI_HIERARCHY), classes)
    assert h["/m/04yx4"] == ["Person"]  # Man
    assert h["/m/0pg52"] == ["Car", "Land vehicle", "Vehicle"]  # Taxi: every level
    assert h["/m/07j87"] == ["Fruit", "Vegetable"]  # Tomato sits under two parents
    assert h["/m/01g317"] == []  # Person: the root "Entity" has no display name
    assert h["/m/0dzct"] == []  # Human face is a Part of Person, not a kind of person


def test_bad_hierarchy_is_a_clear_error(tmp_path):
    bad = tmp_path / "h.json"
    bad.write_text('{"Subcategory": []}')
    with pytest.raises(ValueError, match="LabelName"):
        read_hierarchy(str(bad), read_class_descriptions(str(OI_HIERARCHY_CLASSES)))


def _read(tmp_path, hierarchy, boxes=OI_HIERARCHY_BOXES):
    records = read_openimages(
        str(boxes),
        str(OI_HIERARCHY_CLASSES),
        Spill(str(tmp_path), RAW_OBJECTS, "objects"),
        hierarchy_uri=str(hierarchy) if hierarchy else None,
    )
    objects = records.objects.read_all()
    names = dict(zip(*(records.categories.column(c).to_pylist() for c in ("key", "name"))))
    category = pa.array([names[k] for k in objects.column("category_key").to_pylist()])
    return records.images, objects.set_column(
        objects.schema.get_field_index("category"), "category", category
    )


def _qa(tmp_path, hierarchy, boxes=OI_HIERARCHY_BOXES):
    """Fixture boxes -> curation -> scene -> QA, as the pipeline runs them."""
    from PIL import Image

    images, objects = _read(tmp_path, hierarchy, boxes)
    photos = tmp_path / "images"
    photos.mkdir(exist_ok=True)
    for name in images.column("file_name").to_pylist():
        Image.fromarray(np.full((500, 1000, 3), 90, np.uint8)).save(photos / name)
    cur = curate_shard(
        images,
        schemas.conform(objects, schemas.OBJECTS),
        schemas.empty(schemas.QUARANTINE),
        str(photos),
    )
    scene = build_scene(cur.images, cur.objects, None, None, None)
    tasks = generate_tasks(scene, QASettings(max_category_share=1.0))
    return scene, tasks


def test_related_classes_are_neither_counted_nor_named(tmp_path):
    """B4: two "Man" boxes and a "Person" box: "How many people? 1" and "the person" would
    both be false; the unrelated airplane and the clean women stay."""
    _, objects = _read(tmp_path, OI_HIERARCHY)
    anc = dict(
        zip(
            objects.column("category").to_pylist(), objects.column("category_ancestors").to_pylist()
        )
    )
    assert anc["Man"] == ["Person"] and anc["Airplane"] == ["Vehicle"]
    scene, tasks = _qa(tmp_path, OI_HIERARCHY)
    incomplete = {
        (r["image_id"], r["category"]): r["category_incomplete"] for r in scene.to_pylist()
    }
    A, B = "0a0000000000000a", "0b0000000000000b"
    assert incomplete == {
        (A, "Man"): True,
        (A, "Person"): True,
        (A, "Human face"): False,
        (A, "Airplane"): False,
        (B, "Woman"): False,  # no Person box in that photo
        (B, "Taxi"): False,
    }
    counted = {
        (r["image_id"], r["fact"]["subject"]): r["answer"] for r in tasks["counting"].to_pylist()
    }
    assert counted == {
        (A, "Human face"): "1",
        (A, "Airplane"): "1",
        (B, "Woman"): "2",
        (B, "Taxi"): "1",
    }
    named = {r["answer"] for r in tasks["referring"].to_pylist()}
    assert "The airplane." in named and not named & {"The person.", "The man.", "The leftmost man."}
    grounded = [r["fact"]["subject"] for r in tasks["grounding"].to_pylist()]
    by_id = {r["object_id"]: r["category"] for r in scene.to_pylist()}
    assert not {by_id.get(s, s) for s in grounded} & {"Man", "Person"}


def test_without_hierarchy_related_classes_go_unnoticed(tmp_path):
    """The documented risk when no hierarchy file is configured."""
    _, objects = _read(tmp_path, None)
    assert objects.column("category_ancestors").null_count == objects.num_rows
    _, tasks = _qa(tmp_path, None)
    counted = {r["fact"]["subject"]: r["answer"] for r in tasks["counting"].to_pylist()}
    assert counted["Person"] == "1"  # next to two "Man" boxes: the risk the docstring names


def test_unknown_exclusion_flags_keep_a_box_out_of_counts(tmp_path):
    """B3: an unknown IsGroupOf (-1) is "possibly a group": the category is not counted."""
    boxes = tmp_path / "boxes.csv"
    header = OI_HIERARCHY_BOXES.read_text().splitlines()[0]
    boxes.write_text(
        header + "\n"
        "0c0000000000000c,xclick,/m/0cmf2,1,0.05,0.30,0.10,0.50,0,0,-1,0,0\n"
        "0c0000000000000c,xclick,/m/0cmf2,1,0.60,0.90,0.10,0.50,0,0,0,0,0\n"
        "0c0000000000000c,xclick,/m/0pg52,1,0.35,0.55,0.50,0.80,0,0,0,0,0\n"
    )
    _, objects = _read(tmp_path, None, boxes)
    assert objects.column("is_group").to_pylist() == [True, False, False]
    _, tasks = _qa(tmp_path, None, boxes)
    counted = {r["fact"]["subject"]: r["answer"] for r in tasks["counting"].to_pylist()}
    assert counted == {"Taxi": "1"}  # 1 airplane would be false if the -1 box is a group
    named = {r["answer"] for r in tasks["referring"].to_pylist()}
    assert "The airplane." not in named and "The taxi." in named
