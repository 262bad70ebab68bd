"""A shard's scene table as sorted numpy arrays grouped by image: the input of every generator.

Why a view: the six generators ask the same questions of a shard (which objects are countable
instances, where each image's objects start, how close each object is) and must answer them
over whole shards at once (numpy over arrays, no Python loop per object) to reach the
throughput target.  The view sorts the scene by ``(source, shard, image_id, object_id)`` first,
so everything derived from it is independent of the input row order, the worker and the
machine; duplicate ``(source, image_id, object_id)`` rows are refused with a clear error
because they would make that order matter.

Conventions: boxes are the stored ``bbox_1000`` ints (so "left of" is measured in the same
[0, 1000] units the questions print); a null flag counts as "not flagged" (a reader whose
source can say "unknown" resolves it itself: OpenImages' unknown group/depiction/truncated
flags arrive as True, see :mod:`sf_platform.core.sources.openimages`); an object without a
category or a box can be counted (points: one instance per point) but never named or used as
a relation endpoint.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas
from sf_platform.core.arrays import numpy_filled, single_chunk
from sf_platform.core.facing import FACINGS as FACING
from sf_platform.core.instances import FACT_INPUTS, INSTANCE_COLUMNS, boxes_1000, instance_facts
from sf_platform.core.qa.groups import (
    expand_ranges,
    group_ids,
    group_starts,
    others_max,
    others_min,
)
from sf_platform.core.qa.ids import combine, hash_strings
from sf_platform.core.qa.settings import QASettings

FACING_TOWARD, FACING_AWAY, FACING_LEFT, FACING_RIGHT = range(len(FACING))
__all__ = ["FACING", "SceneView", "clearly_left_of", "expand_ranges", "group_ids", "group_starts",
           "others_max", "others_min"]
SORT_KEYS = [
    ("source", "ascending"),
    ("shard", "ascending"),
    ("image_id", "ascending"),
    ("object_id", "ascending"),
]


def clearly_left_of(
    a: np.ndarray, b: np.ndarray, margin_1000: float, max_overlap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Is box ``a`` clearly left of box ``b`` (``[n, 4]`` in [0, 1000])?  Returns (flag, centre gap).

    The one left/right rule of every task (left_right, perspective, "the leftmost / rightmost"
    references), so they never disagree.  Clear means no horizontal overlap (``a.x2 <= b.x1``),
    or, when the boxes overlap:

    - both extents in the same order (``a.x1 < b.x1`` and ``a.x2 < b.x2``): a cup held in front
      of a person (box inside box) is neither left nor right of them;
    - the overlap at most ``max_overlap`` of the *narrower* box's width (default 0.3): at
      least 70% of each box then lies on its own side, which also puts the centres at least
      0.7 x the mean box width apart.  Heavily overlapping boxes are objects in contact or one
      in front of the other (a person sitting on a sofa: boxes [100, 900] and [160, 960]
      overlap over 92% of the narrower one), where "left of" is a matter of opinion; DESIGN.md
      ("Why relation answers need margins") prefers dropping such a pair to publishing it;
    - centres more than ``margin_1000`` apart (``left_right_margin`` of the image width): a
      floor for small boxes, whose few-pixel annotation noise is a large share of their size.
    """
    ax1, ax2, bx1, bx2 = a[:, 0], a[:, 2], b[:, 0], b[:, 2]
    gap = (bx1 + bx2 - ax1 - ax2) / 2.0
    no_overlap = ax2 <= bx1
    ordered = (ax1 < bx1) & (ax2 < bx2)
    overlap = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    narrower = np.minimum(ax2 - ax1, bx2 - bx1)
    small = overlap <= max_overlap * narrower
    return no_overlap | (ordered & small & (gap > margin_1000)), gap


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
        c = single_chunk(self._scene.column(name))
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
        return single_chunk(self.column("category"))

    @cached_property
    def _categories(self) -> tuple[np.ndarray, list[str]]:
        cat = self.category
        names = sorted(set(pc.unique(cat.drop_null()).to_pylist()))
        code = pc.index_in(cat, value_set=pa.array(names, type=pa.string()))
        codes = numpy_filled(code, len(names), np.int64)
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
    def cat_inverse(self) -> tuple[np.ndarray, int]:
        """(dense 0..k-1 id of each object's (image, category) group, k)."""
        inv = np.unique(self.cat_group, return_inverse=True)[1]
        return inv, int(inv.max()) + 1 if len(inv) else 0

    def category_total(self, values: np.ndarray) -> np.ndarray:
        """Per object, the sum of ``values`` over its (image, category) group."""
        inv, n = self.cat_inverse
        return np.bincount(inv, weights=np.asarray(values, np.float64), minlength=n)[inv]

    # -- instance facts: decided by core.instances, stored by the scene -------------------
    @cached_property
    def _instance_facts(self) -> dict[str, np.ndarray]:
        """The scene's instance columns in view order.  A scene that lacks them (written
        before they existed, or built by hand in a test) gets them from the same rule,
        :func:`sf_platform.core.instances.instance_facts`, over the view's columns."""
        names = [c for c in INSTANCE_COLUMNS if not c.endswith("_rank")]
        stored = all(
            c in self._scene.column_names and (self.n == 0 or self._scene.column(c).null_count < self.n)
            for c in names
        )
        if not stored:
            return instance_facts(pa.table({c: self.column(c) for c in FACT_INPUTS}))
        return {c: numpy_filled(self.column(c), False if schemas.SCENE.field(c).type == pa.bool_() else 0,
                       bool if schemas.SCENE.field(c).type == pa.bool_() else np.int64) for c in names}

    @property
    def countable(self) -> np.ndarray:
        """One real instance: a category and no crowd/group/depiction/fake/reflected flag."""
        return self._instance_facts["countable"]

    @property
    def instances(self) -> np.ndarray:
        """Instances each object stands for: 1 per countable box, one per point of a
        countable point-only object, 0 for anything not countable."""
        return self._instance_facts["instances"]

    @property
    def n_instances(self) -> np.ndarray:
        """Countable instances of the object's category in its image (``category_count``)."""
        return self._instance_facts["category_count"]

    @property
    def all_boxed(self) -> np.ndarray:
        """Every countable instance of the object's category in its image has a box."""
        return self._instance_facts["category_all_boxed"]

    @property
    def category_clean(self) -> np.ndarray:
        """The category may be counted and named in this image (``core.instances``)."""
        return self._instance_facts["category_clean"]

    # -- flags and geometry ----------------------------------------------------------------
    def flag(self, name: str) -> np.ndarray:
        return numpy_filled(self.column(name), False, bool)

    def clearly_left_of(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`clearly_left_of` of objects ``i`` and ``j`` under this view's settings."""
        s = self.settings
        return clearly_left_of(
            self.box[i], self.box[j], 1000.0 * s.left_right_margin, s.left_right_max_overlap
        )

    @cached_property
    def truncated(self) -> np.ndarray:
        return self.flag("is_truncated")

    @cached_property
    def bbox_1000(self) -> pa.Array:
        return single_chunk(self.column("bbox_1000"))

    @cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        return boxes_1000(self.bbox_1000, self.n)

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
        d = numpy_filled(self.column("depth_median"), np.nan, np.float64)
        kind = self.column("depth_kind")
        metric = numpy_filled(pc.equal(kind, "metric"), False, bool)
        disp = numpy_filled(pc.equal(kind, "disparity"), False, bool)
        dmin = numpy_filled(self.column("image_depth_min"), np.nan, np.float64)
        dmax = numpy_filled(self.column("image_depth_max"), np.nan, np.float64)
        rng = dmax - dmin
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(
                metric,
                -np.log(np.where(d > 0, d, np.nan)),
                (d - dmin) / np.where(rng > 0, rng, np.nan),
            )
        margin = np.where(metric, s.near_far_log_margin, s.near_far_disparity_margin)
        # Reliability is decided once, by the scene (``depth_reliable`` already folds in mask
        # quality: a poor mask falls back to the box, trusted only when the whole box is one
        # depth layer, ``core.depth_stats``); a second mask gate here only dropped good pairs.
        ok = self.flag("depth_reliable") & (metric | disp) & np.isfinite(score)
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
        return numpy_filled(self.column("depth_median"), np.nan, np.float64)

    # -- people -----------------------------------------------------------------------------
    @cached_property
    def facing(self) -> np.ndarray:
        """0 toward, 1 away, 2 left (faces image-left), 3 right; -1 unknown / none."""
        code = pc.index_in(single_chunk(self.column("facing")), value_set=pa.array(FACING))
        return numpy_filled(code, -1, np.int64)

    @cached_property
    def facing_confidence(self) -> np.ndarray:
        return numpy_filled(self.column("facing_confidence"), 0.0, np.float64)

    # -- image-level counts (PixMo) --------------------------------------------------------
    @cached_property
    def image_count(self) -> np.ndarray:
        col = single_chunk(self.column("image_count")).take(pa.array(self.img_starts[:-1]))
        return numpy_filled(col, -1, np.int64)

    @cached_property
    def image_count_label(self) -> pa.Array:
        return single_chunk(self.column("image_count_label")).take(pa.array(self.img_starts[:-1]))

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
