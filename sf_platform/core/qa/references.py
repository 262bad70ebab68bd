"""How a question names an object so that exactly one object in the image fits the name.

Every object a question mentions must be unambiguous in its image (DESIGN.md).  An object can
be named

- by its category alone when it is the only box of that category in the image ("the chair");
- by a disambiguating attribute when its category repeats: the leftmost / rightmost one (clear
  of every other instance by the left_right rule, :func:`scene_view.clearly_left_of`), the
  largest one (area at least ``referring_size_ratio`` times the next), or the one closest to /
  farthest from the camera (depth gap over the near_far margin to every other instance, all
  with reliable depth);
- or by its box in the question ("the chair at [100, 500, 300, 900]").

Names and attributes are only offered over a *clean* category (``SceneView.category_clean``:
no crowd/group/depiction/fake/reflected box of it in the image, no annotation of it lost to
quarantine, no related OpenImages class present: with a "group of chairs" box present, "the
leftmost chair" is not well defined), and attributes only when *every* instance of it has a
box (``SceneView.all_boxed``): a point-only instance (a PixMo point the detector matched to no
box) has no extent to compare, so "the rightmost chair" among the boxed ones could be false.  A relation question never names its objects by the attribute it asks about
("which is closer, the chair closest to the camera or ..." gives the answer away), so each
task passes the attributes it may use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.category_names import display_name, plural  # noqa: F401 (re-exported)
from sf_platform.core.qa.ids import coin, combine, hash_string
from sf_platform.core.qa.scene_view import SceneView, others_max, others_min
from sf_platform.core.qa.templates import concat

ATTRIBUTES = ("unique", "leftmost", "rightmost", "largest", "closest", "farthest")
BOX = len(ATTRIBUTES)  # code of "named by its box"
_PREFIX = ("", "leftmost ", "rightmost ", "largest ", "", "", "")
_SUFFIX = ("", "", "", "", " closest to the camera", " farthest from the camera", " at ")
RELATION_SAFE = {
    "near_far": ("unique", "leftmost", "rightmost", "largest"),
    "left_right": ("unique", "largest", "closest", "farthest"),
    "perspective": ("unique", "largest"),
}
def box_text(box: np.ndarray, sep: str = ", ") -> pa.Array:
    """``[x1, y1, x2, y2]`` text of ``[n, 4]`` int boxes (``sep=","`` for the compact fact form)."""
    cols = [pa.array(np.asarray(box[:, i], dtype=np.int64)).cast(pa.string()) for i in range(4)]
    return concat("[", cols[0], sep, cols[1], sep, cols[2], sep, cols[3], "]")


def json_label(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


@dataclass(frozen=True)
class Attributes:
    """Per object: which references single it out (``ok[:, a]``) and by what margin."""

    ok: np.ndarray  # [n, 6] bool, columns in ATTRIBUTES order
    margin: np.ndarray  # [n, 6] float: gap to the runner-up (1000-units, area ratio, depth score)


def attributes(view: SceneView) -> Attributes:
    """Which of the :data:`ATTRIBUTES` hold, with a clear margin, for each object."""
    cached = view.__dict__.get("_attributes")
    if cached is not None:
        return cached
    s = view.settings
    n = view.n
    member = view.countable & view.has_box & view.category_clean & view.all_boxed
    g = view.cat_group
    repeated = member & (view.n_instances >= 2)
    ok = np.zeros((n, len(ATTRIBUTES)), dtype=bool)
    margin = np.zeros((n, len(ATTRIBUTES)))
    # The only instance of a clean category (a point-only instance counts too: n_instances).
    ok[:, 0] = member & (view.n_instances == 1)
    # Leftmost / rightmost: clearly left (right) of every other instance by the left_right rule.
    ok[:, 1] = repeated & _clear_extreme(view, member, leftmost=True)
    margin[:, 1] = others_min(g, view.centre_x, member) - view.centre_x
    ok[:, 2] = repeated & _clear_extreme(view, member, leftmost=False)
    margin[:, 2] = view.centre_x - others_max(g, view.centre_x, member)
    area = view.area_frac
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = area / others_max(g, area, member)
    ok[:, 3] = repeated & (ratio >= s.referring_size_ratio)
    margin[:, 3] = ratio
    # Depth extremes: every instance of the category must have a reliable depth.
    all_ok = view.category_total(member & ~view.depth_ok) == 0
    near = np.where(view.depth_ok, view.near_score, 0.0)
    gap_c = near - others_max(g, near, member)
    gap_f = others_min(g, near, member) - near
    depth_rep = repeated & all_ok & view.depth_ok
    ok[:, 4] = depth_rep & (gap_c > view.near_margin)
    ok[:, 5] = depth_rep & (gap_f > view.near_margin)
    margin[:, 4], margin[:, 5] = gap_c, gap_f
    margin[:, 0] = np.nan  # uniqueness has no margin
    out = Attributes(ok=ok, margin=np.where(np.isfinite(margin), margin, np.nan))
    view.__dict__["_attributes"] = out
    return out


def _clear_extreme(view: SceneView, member: np.ndarray, leftmost: bool) -> np.ndarray:
    """Members clearly left (``leftmost``) or right of every other member of their group.

    Only the member with the strictly smallest ``x1`` (largest ``x2``) of its group can be, so
    each group's candidate is paired with every other member once (linear in the members, not
    quadratic) and kept when :meth:`SceneView.clearly_left_of` holds for all of them.
    """
    g = view.cat_group
    edge = view.box[:, 0] if leftmost else -view.box[:, 2]
    cand = member & (edge < others_min(g, edge.astype(np.float64), member))
    inv, n_groups = view.cat_inverse
    cand_of = np.full(n_groups, -1, dtype=np.int64)
    cand_of[inv[cand]] = np.flatnonzero(cand)
    j = np.flatnonzero(member & ~cand & (cand_of[inv] >= 0))
    c = cand_of[inv[j]]
    fine = view.clearly_left_of(c, j)[0] if leftmost else view.clearly_left_of(j, c)[0]
    failed = np.bincount(inv[j[~fine]], minlength=n_groups)
    return cand & (failed[inv] == 0)


@dataclass(frozen=True)
class References:
    phrase: pa.Array  # per object, without article; null where the object cannot be named
    code: np.ndarray  # index into ATTRIBUTES, or BOX
    margin: np.ndarray


def names(view: SceneView) -> pa.Array:
    """Display name per object ("object" for a null category, which is never named)."""
    cached = view.__dict__.get("_names")
    if cached is None:
        cached = pa.array([display_name(c) for c in view.cat_names] + ["object"]).take(
            pa.array(view.cat)
        )
        view.__dict__["_names"] = cached
    return cached


def boxes_text(view: SceneView) -> pa.Array:
    cached = view.__dict__.get("_box_text")
    if cached is None:
        cached = view.__dict__["_box_text"] = box_text(view.box)
    return cached


def references(
    view: SceneView, allowed: tuple[str, ...], salt: str, fallback_box: bool
) -> References:
    """Name every object with one of the ``allowed`` attributes, else by box (if allowed).

    "unique" wins when it holds; otherwise one of the applicable attributes is picked by a
    coin on the object's hash (salted per task), so phrasings vary but stay deterministic.
    """
    att = attributes(view)
    cols = [ATTRIBUTES.index(a) for a in allowed]
    ok = np.zeros_like(att.ok)
    ok[:, cols] = att.ok[:, cols]
    n_ok = ok.sum(axis=1)
    u = coin(combine(view.obj_hash, hash_string("reference:" + salt), view.settings.seed))
    pick = np.minimum((u * np.maximum(n_ok, 1)).astype(np.int64), np.maximum(n_ok - 1, 0))
    rank = np.cumsum(ok, axis=1) - 1
    chosen = np.argmax(ok & (rank == pick[:, None]), axis=1)
    code = np.where(ok[:, 0], 0, np.where(n_ok > 0, chosen, BOX))
    usable = view.countable & view.has_box & view.has_category
    if not fallback_box:
        usable &= code != BOX
    box_txt = pc.if_else(pa.array(code == BOX), boxes_text(view), "")
    phrase = concat(
        pa.array(_PREFIX).take(pa.array(code)),
        names(view),
        pa.array(_SUFFIX).take(pa.array(code)),
        box_txt,
    )
    phrase = pc.if_else(pa.array(usable), phrase, pa.scalar(None, pa.string()))
    marg = np.where(code < BOX, att.margin[np.arange(view.n), np.minimum(code, BOX - 1)], np.nan)
    return References(phrase=phrase, code=code, margin=marg)
