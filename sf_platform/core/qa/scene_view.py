"""A shard's scene table as sorted numpy arrays grouped by image: the input of every generator.

Why a view: the six generators ask the same questions of a shard (which objects are countable
instances, where each image's objects start, how close each object is) and must answer them
over whole shards at once (numpy over arrays, no Python loop per object) to reach the
throughput target.  The view sorts the scene by ``(source, shard, image_id, object_id)`` first,
so everything derived from it is independent of the input row order, the worker and the
machine; duplicate ``(source, image_id, object_id)`` rows are refused with a clear error
because they would make that order matter.

Conventions: boxes are the stored ``bbox_1000`` ints (so "left of" is measured in the same
[0, 1000] units the questions print); a null flag counts as "not flagged"; an object without a
category or a box can be counted (points) but never named or used as a relation endpoint.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas
from sf_platform.core.qa.ids import combine, hash_strings
from sf_platform.core.qa.settings import QASettings

FACING = ("toward", "away", "left", "right")
FACING_TOWARD, FACING_AWAY, FACING_LEFT, FACING_RIGHT = range(4)
# The flags that make a box something other than one countable instance (DESIGN.md).
NON_INSTANCE_FLAGS = ("is_crowd", "is_group", "is_depiction", "is_fake", "is_reflected")
SORT_KEYS = [
    ("source", "ascending"),
    ("shard", "ascending"),
    ("image_id", "ascending"),
    ("object_id", "ascending"),
]


def _np(col, fill, dtype) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        col = pc.fill_null(col, fill)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


def _strings(col) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Start offsets (plus the end) of runs of equal values in a sorted key array."""
    n = len(keys)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    new = np.r_[True, keys[1:] != keys[:-1]]
    return np.r_[np.flatnonzero(new), n].astype(np.int64)


def group_ids(keys: np.ndarray) -> np.ndarray:
    """Dense run ids (0, 0, 1, 2, 2, ...) of a sorted key array."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1


def others_min(group: np.ndarray, values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each member, the smallest value among the *other* members of its group (inf if none).

    Lets "is this the leftmost chair, and by how much" be decided for every object at once: an
    object is an extreme with a clear margin iff its value beats ``others_min`` by the margin.
    """
    out = np.full(len(values), np.inf)
    idx = np.flatnonzero(member)
    if idx.size == 0:
        return out
    g, v = group[idx], values[idx]
    o = np.lexsort((idx, v, g))
    si, sg, sv = idx[o], g[o], v[o]
    starts = group_starts(sg)[:-1]
    sizes = np.diff(np.r_[starts, len(sg)])
    gid = group_ids(sg)
    first = sv[starts]
    second = np.where(sizes >= 2, sv[np.minimum(starts + 1, len(sv) - 1)], np.inf)
    is_first = np.zeros(len(sg), dtype=bool)
    is_first[starts] = True
    out[si] = np.where(is_first, second[gid], first[gid])
    return out


def others_max(group: np.ndarray, values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Largest value among the other members of each member's group (-inf if none)."""
    return -others_min(group, -np.asarray(values, dtype=np.float64), member)


def clearly_left_of(
    a: np.ndarray, b: np.ndarray, margin_1000: float
) -> tuple[np.ndarray, np.ndarray]:
    """Is box ``a`` clearly left of box ``b`` (``[n, 4]`` in [0, 1000])?  Returns (flag, centre gap).

    Clear means no horizontal overlap (``a.x2 <= b.x1``), or, when the boxes overlap, both
    extents in the same order (``a.x1 < b.x1`` and ``a.x2 < b.x2``) and centres more than
    ``margin_1000`` apart.  Comparing extents, not just centres, keeps a cup held in front of a
    person (box inside box) from being called "left of" them (DESIGN.md, "Why relation
    answers need margins").
    """
    ax1, ax2, bx1, bx2 = a[:, 0], a[:, 2], b[:, 0], b[:, 2]
    gap = (bx1 + bx2 - ax1 - ax2) / 2.0
    no_overlap = ax2 <= bx1
    ordered = (ax1 < bx1) & (ax2 < bx2)
    return no_overlap | (ordered & (gap > margin_1000)), gap


class SceneView:
    """One shard's scene, sorted and grouped by image; columns as numpy arrays."""

    def __init__(self, scene: pa.Table, settings: QASettings):
        self.settings = settings
        self._scene = scene
        self._cols: dict[str, pa.Array] = {}
        self.n = scene.num_rows
        keys = pa.table({k: self._raw(k) for k, _ in SORT_KEYS})
        self._order = pc.sort_indices(keys, sort_keys=SORT_KEYS) if self.n else None
        src = self.column("source")
        image_id = self.column("image_id")
        self.object_id = self.column("object_id")
        self.obj_hash = hash_strings(self.object_id)
        img_key = combine(hash_strings(src), hash_strings(image_id))
        self._check_unique(img_key)
        starts = group_starts(img_key)
        self.img_starts = starts
        self.n_images = len(starts) - 1
        self.img = np.repeat(np.arange(self.n_images), np.diff(starts))
        first = starts[:-1]
        take = pa.array(first, type=pa.int64())
        self.images = {
            name: (self.column(name)).take(take)
            for name in ("source", "shard", "image_id", "image_uri", "file_name", "width", "height")
        }
        self.image_hash = img_key[first]

    def _raw(self, name: str) -> pa.Array:
        """Column ``name`` of the input, cast to its SCENE type (nulls if absent), unsorted."""
        field = schemas.SCENE.field(name)
        if name not in self._scene.column_names:
            return pa.nulls(self.n, field.type)
        c = _strings(self._scene.column(name))
        if c.type != field.type:
            try:
                c = c.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"scene column {name!r}: cannot cast {c.type} to {field.type}"
                ) from exc
        return c

    def column(self, name: str) -> pa.Array:
        """Column ``name`` in the view's sorted order (only the columns a task reads are sorted)."""
        c = self._cols.get(name)
        if c is None:
            c = self._raw(name)
            if self._order is not None:
                c = c.take(self._order)
            self._cols[name] = c
        return c

    def _check_unique(self, img_key: np.ndarray) -> None:
        if self.n < 2:
            return
        key = combine(img_key, self.obj_hash)
        dup = (key[1:] == key[:-1]) & (img_key[1:] == img_key[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(
                "scene has duplicate objects: image_id="
                f"{self.column('image_id')[i].as_py()!r} object_id={self.object_id[i].as_py()!r} "
                "appears more than once; QA generation needs unique (source, image_id, object_id)"
            )

    # -- categories ------------------------------------------------------------------------
    @cached_property
    def category(self) -> pa.Array:
        return _strings(self.column("category"))

    @cached_property
    def _categories(self) -> tuple[np.ndarray, list[str]]:
        cat = self.category
        names = sorted(set(pc.unique(cat.drop_null()).to_pylist()))
        code = pc.index_in(cat, value_set=pa.array(names, type=pa.string()))
        codes = _np(code, len(names), np.int64)
        return codes, names

    @property
    def cat(self) -> np.ndarray:
        """Category code per object (index into :attr:`cat_names`; null -> len(cat_names))."""
        return self._categories[0]

    @property
    def cat_names(self) -> list[str]:
        return self._categories[1]

    @cached_property
    def category_hash(self) -> np.ndarray:
        """Hash of each object's category name (what counting and multi-grounding are about)."""
        return hash_strings(pa.array(self.cat_names + [None], type=pa.string()))[self.cat]

    @cached_property
    def has_category(self) -> np.ndarray:
        return self.cat < len(self.cat_names)

    @cached_property
    def cat_group(self) -> np.ndarray:
        """Dense id of each object's (image, category) group."""
        return self.img * (len(self.cat_names) + 1) + self.cat

    @cached_property
    def _cat_counts(self) -> tuple[np.ndarray, np.ndarray]:
        g = self.cat_group
        uniq, inv = np.unique(g, return_inverse=True)
        n_all = np.bincount(inv, weights=self.has_category.astype(np.float64), minlength=len(uniq))
        n_cnt = np.bincount(inv, weights=self.countable.astype(np.float64), minlength=len(uniq))
        return n_all[inv].astype(np.int64), n_cnt[inv].astype(np.int64)

    @property
    def n_same_category(self) -> np.ndarray:
        """Boxes/points of the object's category in its image, countable or not."""
        return self._cat_counts[0]

    @property
    def n_countable_same_category(self) -> np.ndarray:
        return self._cat_counts[1]

    @cached_property
    def category_clean(self) -> np.ndarray:
        """No crowd/group/depiction/fake/reflected box of this category in the image.

        Only then may the category be counted or named: "the chair" or "how many chairs" is
        ambiguous when a mirror reflection or a "group of chairs" box is also a chair.
        """
        return self.has_category & (self.n_same_category == self.n_countable_same_category)

    # -- flags and geometry ----------------------------------------------------------------
    def flag(self, name: str) -> np.ndarray:
        return _np(self.column(name), False, bool)

    @cached_property
    def countable(self) -> np.ndarray:
        bad = np.zeros(self.n, dtype=bool)
        for f in NON_INSTANCE_FLAGS:
            bad |= self.flag(f)
        return ~bad & (self.cat < len(self.cat_names))

    @cached_property
    def truncated(self) -> np.ndarray:
        return self.flag("is_truncated")

    @cached_property
    def bbox_1000(self) -> pa.Array:
        return _strings(self.column("bbox_1000"))

    @cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        col = self.bbox_1000
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        child = col.values.slice(col.offset * 4, self.n * 4)
        box = _np(child, 0, np.int64).reshape(self.n, 4)
        child_ok = child.is_valid().to_numpy(zero_copy_only=False).reshape(self.n, 4).all(axis=1)
        ok = valid & child_ok & (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
        return box, ok

    @property
    def box(self) -> np.ndarray:
        """``[n, 4]`` int64 boxes in [0, 1000] (zeros where :attr:`has_box` is False)."""
        return self._boxes[0]

    @property
    def has_box(self) -> np.ndarray:
        return self._boxes[1]

    @cached_property
    def area_frac(self) -> np.ndarray:
        b = self.box
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 1e6

    @cached_property
    def centre_x(self) -> np.ndarray:
        return (self.box[:, 0] + self.box[:, 2]) / 2.0

    @cached_property
    def nameable(self) -> np.ndarray:
        """A countable instance with a box, not too small to ask about (min_object_area_frac)."""
        return (
            self.countable & self.has_box & (self.area_frac >= self.settings.min_object_area_frac)
        )

    # -- depth ------------------------------------------------------------------------------
    @cached_property
    def _depth(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s = self.settings
        d = _np(self.column("depth_median"), np.nan, np.float64)
        kind = self.column("depth_kind")
        metric = _np(pc.equal(kind, "metric"), False, bool)
        disp = _np(pc.equal(kind, "disparity"), False, bool)
        dmin = _np(self.column("image_depth_min"), np.nan, np.float64)
        dmax = _np(self.column("image_depth_max"), np.nan, np.float64)
        rng = dmax - dmin
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(
                metric,
                -np.log(np.where(d > 0, d, np.nan)),
                (d - dmin) / np.where(rng > 0, rng, np.nan),
            )
        margin = np.where(metric, s.near_far_log_margin, s.near_far_disparity_margin)
        iou = _np(self.column("mask_box_iou"), 1.0, np.float64)
        ok = (
            self.flag("depth_reliable")
            & (metric | disp)
            & np.isfinite(score)
            & (iou >= s.min_mask_box_iou)
        )
        kind_code = np.where(metric, 0, np.where(disp, 1, -1))
        return np.where(ok, score, np.nan), margin, ok, kind_code

    @property
    def near_score(self) -> np.ndarray:
        """Larger = closer to the camera, on a scale where ``near_margin`` is the clear gap.

        Metric depth: ``-log d`` (the margin is ``near_far_log_margin`` on log depth).
        Disparity: ``(d - min) / (max - min)`` over the image's own range (the margin is
        ``near_far_disparity_margin``), since Depth-Anything's disparity has unknown shift
        and scale and only its ordering within one image means something.
        """
        return self._depth[0]

    @property
    def near_margin(self) -> np.ndarray:
        return self._depth[1]

    @property
    def depth_ok(self) -> np.ndarray:
        return self._depth[2]

    @property
    def depth_kind(self) -> np.ndarray:
        return self._depth[3]

    @cached_property
    def depth(self) -> np.ndarray:
        return _np(self.column("depth_median"), np.nan, np.float64)

    # -- people -----------------------------------------------------------------------------
    @cached_property
    def facing(self) -> np.ndarray:
        """0 toward, 1 away, 2 left (faces image-left), 3 right; -1 unknown / none."""
        code = pc.index_in(_strings(self.column("facing")), value_set=pa.array(FACING))
        return _np(code, -1, np.int64)

    @cached_property
    def facing_confidence(self) -> np.ndarray:
        return _np(self.column("facing_confidence"), 0.0, np.float64)

    # -- image-level counts (PixMo) --------------------------------------------------------
    @cached_property
    def image_count(self) -> np.ndarray:
        col = _strings(self.column("image_count")).take(pa.array(self.img_starts[:-1]))
        return _np(col, -1, np.int64)

    @cached_property
    def image_count_label(self) -> pa.Array:
        return _strings(self.column("image_count_label")).take(pa.array(self.img_starts[:-1]))

    # -- pairs ------------------------------------------------------------------------------
    def image_pairs(self, member: np.ndarray, max_per_image: int) -> tuple[np.ndarray, np.ndarray]:
        """All unordered pairs (i < j) of members within each image.

        At most ``max_per_image`` members per image take part, the largest boxes first: this
        bounds the quadratic enumeration on crowded images (a 200-object Objects365 photo would
        otherwise yield 20k pairs to score and drop), and large objects make the clearest
        questions.
        """
        idx = np.flatnonzero(member)
        if idx.size < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        g = self.img[idx]
        o = np.lexsort((idx, -self.area_frac[idx], g))
        starts = group_starts(g[o])
        rank = np.arange(len(o)) - np.repeat(starts[:-1], np.diff(starts))
        idx = np.sort(idx[o][rank < max_per_image])
        g = self.img[idx]
        starts = group_starts(g)
        sizes = np.diff(starts)
        local = np.arange(len(idx)) - np.repeat(starts[:-1], sizes)
        cnt = np.repeat(sizes, sizes) - 1 - local
        left = np.repeat(np.arange(len(idx)), cnt)
        block = np.repeat(np.cumsum(cnt) - cnt, cnt)
        right = left + 1 + (np.arange(len(left)) - block)
        return idx[left], idx[right]


def expand_ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + k)`` for each (start, size), without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    before = np.cumsum(sizes) - sizes
    return np.repeat(starts - before, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
