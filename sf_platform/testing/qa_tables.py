"""Hand-built, internally consistent QA tables (DESIGN.md's row shapes and fact conventions),
with the scene and curated-images tables they reference, built columnar so the benchmark can
make a million rows in a few seconds.

Every task is balanced by construction (the yes/no, left/right, closer/farther and
first-mentioned-correct signals alternate), every box is valid, every id resolves.  Tests
break one thing at a time on top of :func:`good_tables`.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas

W, H = 800, 600
OBJECTS_PER_IMAGE = 4  # object 3 of every image is a person (perspective needs one)
CATEGORIES = ["chair", "table", "lamp", "cup", "book", "plant", "bottle", "car", "dog", "cat", "bag"]

ALLOWED = {
    ("counting", "counting.number"): frozenset(str(i) for i in range(1, 11)),
    ("left_right", "left_right.yesno"): frozenset({"Yes.", "No."}),
    ("perspective", "perspective.side"): frozenset({"On their left.", "On their right."}),
    ("grounding", "grounding.json"): None,
    ("referring", "referring.region"): None,
    ("near_far", "near_far.which"): None,
    ("conditional_counting", "conditional_counting.number"): None,
}


def allowed_answers(task: str, template_id: str):
    """Stand-in for sf_platform.core.qa.templates.allowed_answers (unknown template: KeyError)."""
    return ALLOWED[(task, template_id)]


def _s(*parts) -> pa.Array:
    """Element-wise string concatenation of arrays/scalars."""
    return pc.binary_join_element_wise(*[p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(str(p)) for p in parts], "")


def _num(a: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(a.astype(np.int64)), pa.string())


def scene_and_images(n_images: int, seed: int = 0, image_uris: list[str] | None = None):
    rng = np.random.default_rng(seed)
    img = np.repeat(np.arange(n_images), OBJECTS_PER_IMAGE)
    k = np.tile(np.arange(OBJECTS_PER_IMAGE), n_images)
    # Objects laid out left to right in four columns, random vertical extent.
    x1 = k * 200 + rng.integers(10, 60, len(k))
    x2 = x1 + rng.integers(60, 130, len(k))
    y1 = rng.integers(10, 300, len(k))
    y2 = y1 + rng.integers(100, 290, len(k))
    px = np.stack([x1 * W / 1000, y1 * H / 1000, x2 * W / 1000, y2 * H / 1000], axis=1)
    box = np.stack([x1, y1, x2, y2], axis=1).astype(np.int16)
    cat_idx = (img * 3 + k) % len(CATEGORIES)
    category = np.where(k == 3, "person", np.array(CATEGORIES, dtype=object)[cat_idx])
    image_id = _num(np.arange(n_images))
    uris = pa.array(image_uris) if image_uris else _s("file:///data/img/", image_id, ".jpg")
    images = schemas.conform(
        pa.table({"source": pa.array(["synthetic"] * n_images), "shard": pa.array(["00000"] * n_images),
                  "image_id": image_id, "image_uri": uris, "width": pa.array(np.full(n_images, W, np.int32)),
                  "height": pa.array(np.full(n_images, H, np.int32))}),
        schemas.IMAGES,
    )
    scene = schemas.conform(
        pa.table({
            "source": pa.array(["synthetic"] * len(img)), "shard": pa.array(["00000"] * len(img)),
            "object_id": _s(_num(img), "-", _num(k)), "image_id": pc.take(image_id, pa.array(img)),
            "category": pa.array(category.tolist()),
            "bbox_px": pa.FixedSizeListArray.from_arrays(pa.array(px.ravel()), 4).cast(schemas.BOX_PX),
            "bbox_1000": pa.FixedSizeListArray.from_arrays(pa.array(box.ravel()), 4).cast(schemas.BOX_1000),
            "image_uri": pc.take(uris, pa.array(img)),
            "width": pa.array(np.full(len(img), W, np.int32)), "height": pa.array(np.full(len(img), H, np.int32)),
        }),
        schemas.SCENE,
    )
    return scene, images


def _objects_col(ids_list, cats_list, boxes_list) -> pa.Array:
    """list<struct> column from per-slot arrays (every row has len(ids_list) objects)."""
    n = len(ids_list[0])
    slots = len(ids_list)
    ids = pa.concat_arrays([pa.array(a) if not isinstance(a, pa.Array) else a for a in ids_list])
    cats = pa.concat_arrays([pa.array(a) if not isinstance(a, pa.Array) else a for a in cats_list])
    boxes = np.concatenate(boxes_list).astype(np.int16)
    # interleave slot-major arrays into row-major order
    order = (np.arange(slots)[None, :] * n + np.arange(n)[:, None]).ravel()
    structs = pa.StructArray.from_arrays(
        [pc.take(ids, pa.array(order)), pc.take(cats, pa.array(order)),
         pa.FixedSizeListArray.from_arrays(pa.array(boxes[order].ravel()), 4).cast(schemas.BOX_1000)],
        fields=list(schemas.QA_OBJECT),
    )
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * slots + 1, slots, dtype=np.int32)), structs)


def qa_table(task: str, scene: pa.Table, images: pa.Table, per_image: int = 2) -> pa.Table:
    """``per_image`` rows of ``task`` for every image, balanced and consistent with the scene."""
    n_img = images.num_rows
    img = np.repeat(np.arange(n_img), per_image)
    j = np.tile(np.arange(per_image), n_img)
    r = np.arange(len(img))
    n = len(img)
    # Pick objects: a in 0..2 (non-person), b the next non-person, person = 3.
    a_k = (img + j) % 3
    b_k = (a_k + 1) % 3
    obj = lambda k: img * OBJECTS_PER_IMAGE + k
    sid, scat, sbox = scene.column("object_id"), scene.column("category"), np.asarray(
        pc.list_flatten(scene.column("bbox_1000")).to_numpy(), dtype=np.int64).reshape(-1, 4)
    a_id, a_cat, a_box = pc.take(sid, pa.array(obj(a_k))), pc.take(scat, pa.array(obj(a_k))), sbox[obj(a_k)]
    b_id, b_cat, b_box = pc.take(sid, pa.array(obj(b_k))), pc.take(scat, pa.array(obj(b_k))), sbox[obj(b_k)]
    p_id, p_cat, p_box = pc.take(sid, pa.array(obj(np.full(n, 3)))), pc.take(scat, pa.array(obj(np.full(n, 3)))), sbox[obj(np.full(n, 3))]
    a_id, a_cat, b_id, b_cat, p_id, p_cat = (x.combine_chunks() for x in (a_id, a_cat, b_id, b_cat, p_id, p_cat))
    box_str = lambda b, sep: _s("[", _num(b[:, 0]), sep, _num(b[:, 1]), sep, _num(b[:, 2]), sep, _num(b[:, 3]), "]")
    empty = pa.array([""] * n)
    ev_count = pa.nulls(n, pa.int32())
    margin = pa.nulls(n, pa.float32())
    if task == "grounding":
        q = _s("Locate the ", a_cat, " in the image and output its bbox coordinates in JSON format.")
        ans = _s('{"bbox_2d": ', box_str(a_box, ", "), ', "label": "', a_cat, '"}')
        fact = (a_id, pa.array(["bbox_1000"] * n), empty, box_str(a_box, ","))
        objs = _objects_col([a_id], [a_cat], [a_box])
        tmpl = "grounding.json"
    elif task == "referring":
        q = _s("What is the object in the region ", box_str(a_box, ", "), "?")
        ans = _s("The ", a_cat, ".")
        fact = (a_id, pa.array(["is"] * n), empty, a_cat)
        objs = _objects_col([a_id], [a_cat], [a_box])
        tmpl = "referring.region"
    elif task in ("counting", "conditional_counting"):
        conditional = task == "conditional_counting"
        cnt = r % 4 if conditional else 1 + (r % 10)  # 0 is a valid conditional count
        where = " are in the left half of the image?" if conditional else " are there in the image?"
        q = _s("How many ", a_cat, where)
        ans = _num(cnt)
        fact = (a_cat, pa.array(["count_in_left_half" if conditional else "count"] * n), empty, _num(cnt))
        objs = _objects_col([a_id], [a_cat], [a_box])
        ev_count = pa.array(cnt.astype(np.int32))
        tmpl = f"{task}.number"
    elif task == "near_far":
        asks_closer = r % 2 == 0
        a_closer = (r // 2) % 2 == 0
        word = np.where(asks_closer, "closer to", "farther from")
        q = _s("Which is ", pa.array(word), " the camera, the ", a_cat, " or the ", b_cat, "?")
        answer_is_a = asks_closer == a_closer
        ans = _s("The ", pc.if_else(pa.array(answer_is_a), a_cat, b_cat), ".")
        closer = pc.if_else(pa.array(a_closer), a_id, b_id)
        farther = pc.if_else(pa.array(a_closer), b_id, a_id)
        fact = (closer, pa.array(["closer_than"] * n), farther, empty)
        objs = _objects_col([a_id, b_id], [a_cat, b_cat], [a_box, b_box])
        margin = pa.array((0.3 + 0.5 * (r % 7) / 7).astype(np.float32))
        tmpl = "near_far.which"
    elif task == "left_right":
        asks_left = r % 2 == 0
        yes = (r // 2) % 2 == 0
        # a is left of b when a_k < b_k (objects are laid out by k)
        a_left = a_k < b_k
        # choose which object is named first so the answer comes out as `yes`
        first_is_a = np.where(asks_left, a_left == yes, (~a_left) == yes)
        f_id, f_cat, f_box = pc.if_else(pa.array(first_is_a), a_id, b_id), pc.if_else(pa.array(first_is_a), a_cat, b_cat), np.where(first_is_a[:, None], a_box, b_box)
        s_id, s_cat, s_box = pc.if_else(pa.array(first_is_a), b_id, a_id), pc.if_else(pa.array(first_is_a), b_cat, a_cat), np.where(first_is_a[:, None], b_box, a_box)
        q = _s("Is the ", f_cat, " to the ", pa.array(np.where(asks_left, "left", "right")), " of the ", s_cat, " at ", box_str(s_box, ", "), "?")
        ans = pa.array(np.where(yes, "Yes.", "No.").tolist())
        left_id = pc.if_else(pa.array(first_is_a == a_left), f_id, s_id)
        right_id = pc.if_else(pa.array(first_is_a == a_left), s_id, f_id)
        fact = (left_id, pa.array(["left_of"] * n), right_id, empty)
        objs = _objects_col([f_id, s_id], [f_cat, s_cat], [f_box, s_box])
        tmpl = "left_right.yesno"
    elif task == "perspective":
        left = r % 2 == 0
        q = _s("From the person's point of view, is the ", a_cat, " at ", box_str(a_box, ", "), " on their left or their right?")
        ans = pa.array(np.where(left, "On their left.", "On their right.").tolist())
        fact = (a_id, pa.array(np.where(left, "left_of_person", "right_of_person").tolist()), p_id, empty)
        objs = _objects_col([a_id, p_id], [a_cat, p_cat], [a_box, p_box])
        tmpl = "perspective.side"
    else:
        raise ValueError(task)
    image_id = pc.take(images.column("image_id"), pa.array(img))
    table = pa.table({
        "qa_id": _s(task, "-", _num(img), "-", _num(j)),
        "task": pa.array([task] * n),
        "source": pa.array(["synthetic"] * n), "shard": pa.array(["00000"] * n),
        "image_id": image_id, "image_uri": pc.take(images.column("image_uri"), pa.array(img)),
        "width": pa.array(np.full(n, W, np.int32)), "height": pa.array(np.full(n, H, np.int32)),
        "question": q, "answer": ans, "template_id": pa.array([tmpl] * n), "objects": objs,
        "fact": pa.StructArray.from_arrays([pa.array(x) if not isinstance(x, (pa.Array, pa.ChunkedArray)) else x for x in fact], fields=list(schemas.FACT)),
        "evidence": pa.StructArray.from_arrays(
            [pa.nulls(n, pa.float32()), pa.nulls(n, pa.float32()), margin, pa.nulls(n, pa.float32()),
             ev_count, pa.nulls(n, pa.float32()), pa.nulls(n, pa.string())], fields=list(schemas.EVIDENCE)),
    })
    return schemas.conform(table, schemas.QA)


def good_tables(n_images: int = 20, per_image: int = 2, tasks=schemas.TASKS, seed: int = 0, image_uris=None):
    """(qa of all ``tasks`` concatenated, scene, images)."""
    scene, images = scene_and_images(n_images, seed, image_uris)
    qa = pa.concat_tables([qa_table(t, scene, images, per_image) for t in tasks])
    return qa, scene, images


def replace_cell(table: pa.Table, column: str, row: int, value) -> pa.Table:
    """A copy of ``table`` with one cell replaced (value as a Python object of that type)."""
    col = table.column(column).to_pylist()
    col[row] = value
    idx = table.column_names.index(column)
    return table.set_column(idx, column, pa.array(col, type=table.schema.field(column).type))


def first_row(table: pa.Table, task: str) -> int:
    return int(np.nonzero(pc.equal(table.column("task"), task).to_numpy(zero_copy_only=False))[0][0])


def grounding_answer(box, label) -> str:
    return json.dumps({"bbox_2d": list(box), "label": label})
