"""Which objects are countable instances, how many each stands for, which categories are clean.

Decided here once, over whole tables (numpy, no Python loop per object): the scene builder
stores the results as columns (:data:`INSTANCE_COLUMNS`), and the QA generators read those
columns through ``core.qa.scene_view.SceneView``.  A rule changed here changes the scene and
every task together; nothing downstream decides it again.

The rules (DESIGN.md: flagged boxes are kept, never counted):

- **countable**: an object with a category and none of :data:`NON_INSTANCE_FLAGS` (a crowd,
  group-of, depiction, fake or reflected box is not one physically present instance).  A null
  flag counts as "not flagged": a reader whose source can say "unknown" resolves it itself
  (OpenImages' unknown group/depiction flags arrive as True, ``core.sources.openimages``).
- **instances**: what a countable object stands for: 1 for a box, one per point for a
  point-only object (PixMo: one point per instance, before or without detection), 0 for
  anything not countable.
- **category_count**: the instances of the object's category in its image (the sum above).
- **category_all_boxed**: every countable instance of the category has a box.  Only then can
  its instances be compared by position, size or depth: "the rightmost chair" among boxed
  chairs is false when a point-only chair lies further right.
- **category_clean**: every object of the category in the image is one countable instance with
  geometry (a box or points), and the scene does not mark the category incomplete.  Only then
  may it be counted or named: "how many chairs" is ambiguous when a mirror reflection or a
  "group of chairs" box is also a chair, and false when a chair annotation was quarantined (a
  box in the question stays fine: it names the object whatever else is in the image).
- **category_unique**: a countable object with geometry that is its clean category's only
  instance.
- **ranks** (``x_rank``, ``size_rank``, ``depth_rank``): 0 = leftmost / largest / closest among
  the category's countable boxed instances in the image, ties broken by object id; null for
  everything else.

Which objects get a facing: :func:`is_person`, a boxed single person (a crowd or group box has
no one skeleton).  The facing labels themselves are ``core.facing.FACINGS``.

Boxes are the stored ``bbox_1000`` ints (:func:`boxes_1000`): "left of" and areas are measured
in the same [0, 1000] units the questions print.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.arrays import numpy_filled, single_chunk

# The flags that make a box something other than one countable instance (DESIGN.md).
NON_INSTANCE_FLAGS = ("is_crowd", "is_group", "is_depiction", "is_fake", "is_reflected")
# Category names (case-insensitive) that hold one person: what the pose op estimates a
# facing for.
PERSON_CATEGORIES = frozenset({"person", "man", "woman", "boy", "girl", "child", "human"})
# One skeleton per box: a crowd or group box holds many people.
NOT_ONE_PERSON_FLAGS = ("is_crowd", "is_group")
# The columns the instance facts are decided from.
FACT_INPUTS = ("source", "image_id", "category", "bbox_1000", "points", "category_incomplete") + NON_INSTANCE_FLAGS
# The scene columns this module fills, with their types in schemas.SCENE.
INSTANCE_COLUMNS = (
    "countable", "instances", "category_count", "category_all_boxed", "category_clean",
    "category_unique", "x_rank", "size_rank", "depth_rank",
)


def is_person(obj: dict) -> bool:
    """A boxed object of a person category that stands for one person (not a crowd/group box)."""
    return (
        str(obj.get("category") or "").strip().lower() in PERSON_CATEGORIES
        and obj.get("bbox_px") is not None
        and not any(obj.get(f) for f in NOT_ONE_PERSON_FLAGS)
    )


def boxes_1000(col, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``([n, 4]`` int64 boxes in [0, 1000] (zeros where missing), has_box``) of a
    ``fixed_size_list<int16, 4>`` column; a box is present when it and its four coordinates
    are not null and it has positive width and height."""
    col = single_chunk(col)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    child = col.values.slice(col.offset * 4, n * 4)
    box = numpy_filled(child, 0, np.int64).reshape(n, 4)
    child_ok = child.is_valid().to_numpy(zero_copy_only=False).reshape(n, 4).all(axis=1)
    ok = valid & child_ok & (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    return box, ok


def _column(table: pa.Table, name: str, type_: pa.DataType):
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    return single_chunk(table.column(name))


def _flag(table: pa.Table, name: str) -> np.ndarray:
    return numpy_filled(_column(table, name, pa.bool_()), False, bool)


def _codes(col) -> np.ndarray:
    """Dense int codes of a column's values (null -> -1), for grouping."""
    enc = pc.dictionary_encode(single_chunk(col))
    return numpy_filled(enc.indices, -1, np.int64)


def category_groups(table: pa.Table) -> tuple[np.ndarray, int]:
    """(dense 0..k-1 id of each row's (source, image, category) group, k)."""
    if table.num_rows == 0:
        return np.zeros(0, np.int64), 0
    keys = np.stack([_codes(_column(table, c, pa.string())) for c in ("source", "image_id", "category")], axis=1)
    inverse = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    return inverse, int(inverse.max()) + 1


def instance_facts(table: pa.Table) -> dict[str, np.ndarray]:
    """The instance columns (module doc) of a scene-like table: countable, instances,
    category_count, category_all_boxed, category_clean, category_unique, as numpy arrays."""
    n = table.num_rows
    group, k = category_groups(table)

    def total(values) -> np.ndarray:
        return np.bincount(group, weights=np.asarray(values, np.float64), minlength=k)[group]

    has_category = _column(table, "category", pa.string()).is_valid().to_numpy(zero_copy_only=False)
    flagged = np.zeros(n, dtype=bool)
    for f in NON_INSTANCE_FLAGS:
        flagged |= _flag(table, f)
    countable = ~flagged & has_category
    has_box = boxes_1000(_column(table, "bbox_1000", pa.list_(pa.int16(), 4)), n)[1]
    n_points = numpy_filled(pc.list_value_length(_column(table, "points", pa.list_(pa.null()))), 0, np.int64)
    instances = np.where(countable, np.where(has_box, 1, n_points), 0)
    count = total(instances).astype(np.int64)
    whole = countable & (has_box | (n_points > 0))
    incomplete = total(_flag(table, "category_incomplete")) > 0
    clean = has_category & (total(~whole & has_category) == 0) & ~incomplete
    return {
        "countable": countable,
        "instances": instances.astype(np.int64),
        "category_count": count,
        "category_all_boxed": count == total(countable & has_box),
        "category_clean": clean,
        "category_unique": whole & clean & (count == 1),
    }


def _rank(group: np.ndarray, member: np.ndarray, key: np.ndarray, tiebreak: np.ndarray) -> pa.Array:
    """0-based rank of each member by ``key`` (then ``tiebreak``) within its group; null elsewhere."""
    member = member & np.isfinite(key)
    idx = np.flatnonzero(member)
    out = np.zeros(len(group), dtype=np.int64)
    if idx.size:
        order = idx[np.lexsort((tiebreak[idx], key[idx], group[idx]))]
        g = group[order]
        starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
        sizes = np.diff(np.r_[starts, len(order)])
        out[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return pa.array(out, pa.int32(), mask=~member)


def category_ranks(table: pa.Table, countable: np.ndarray) -> dict[str, pa.Array]:
    """x_rank / size_rank / depth_rank among each category's countable boxed instances.

    Position: the pixel box centre (then its left edge); size: the mask area when the mask is
    a real segmentation, else the box area; closeness: metres ascending, disparity descending.
    """
    n = table.num_rows
    group, _ = category_groups(table)
    px = single_chunk(_column(table, "bbox_px", pa.list_(pa.float64(), 4)))
    boxed = px.is_valid().to_numpy(zero_copy_only=False)
    box = numpy_filled(px.values.slice(px.offset * 4, n * 4), 0.0, np.float64).reshape(n, 4)
    member = countable & boxed
    tiebreak = numpy_filled(pc.rank(_column(table, "object_id", pa.string()), "ascending"), 0, np.int64)
    area = numpy_filled(_column(table, "mask_area", pa.float64()), np.nan, np.float64)
    real_mask = ~numpy_filled(pc.equal(_column(table, "mask_provenance", pa.string()), "box"), True, bool)
    size = np.where(real_mask & np.isfinite(area), area, (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))
    depth = numpy_filled(_column(table, "depth_median", pa.float32()), np.nan, np.float64)
    metric = numpy_filled(pc.equal(_column(table, "depth_kind", pa.string()), "metric"), False, bool)
    centre = (box[:, 0] + box[:, 2]) / 2
    # Position ties on the centre fall to the left edge: lexsort keys folded into one float key
    # would lose precision, so the left edge becomes part of the tiebreak order instead.
    left_then_id = np.lexsort((tiebreak, box[:, 0]))
    pos_tiebreak = np.empty(n, np.int64)
    pos_tiebreak[left_then_id] = np.arange(n)
    return {
        "x_rank": _rank(group, member, centre, pos_tiebreak),
        "size_rank": _rank(group, member, -size, tiebreak),
        "depth_rank": _rank(group, member, np.where(metric, depth, -depth), tiebreak),
    }


def add_instance_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the :data:`INSTANCE_COLUMNS` set (replacing any there), typed by ``schema``."""
    facts = instance_facts(table)
    cols: dict[str, pa.Array] = {
        name: pa.array(values).cast(schema.field(name).type) for name, values in facts.items()
    }
    cols |= {name: a.cast(schema.field(name).type) for name, a in category_ranks(table, facts["countable"]).items()}
    for name, arr in cols.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, arr)
        else:
            table = table.append_column(name, arr)
    return table
