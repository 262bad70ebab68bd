"""perspective: where an object is from a person's own point of view.

Only for people whose facing estimate is at least ``min_facing_confidence`` confident.
Geometry (the person's right is ``forward x up``):

- facing the camera ("toward"): their left is the image's RIGHT; "away": their left is the
  image's left.  Left/right uses the same clear-separation rule as left_right.
- in front / behind for toward/away people comes from depth with the near_far margin: an
  object clearly closer to the camera is in front of someone facing the camera and behind
  someone facing away.
- profile "left"/"right" (facing image-left / image-right): objects clearly on the facing
  side of the image are in front, on the other side behind.  Their left/right would need
  depth (facing image-left, their left is toward the camera); it is not asked.

The answer is fixed by geometry, so answer balance comes from phrasing: each candidate is
asked as a two-word question ("left or right?") or a yes/no one; when the word questions of
an axis lean to one answer, the surplus goes to yes/no, whose asked side is then set by rank
parity so yes/no is balanced too (:mod:`balance`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa import balance
from sf_platform.core.qa.ids import coin, combine, mix
from sf_platform.core.qa.references import RELATION_SAFE, references
from sf_platform.core.qa.relation import SALT_ASSIGN, SALT_KIND, SALT_SELECT, SALT_TEMPLATE
from sf_platform.core.qa.rows import build, pair_rows, task_hash
from sf_platform.core.qa.scene_view import (
    FACING,
    FACING_AWAY,
    FACING_LEFT,
    FACING_TOWARD,
    SceneView,
)
from sf_platform.core.qa.templates import NO, TEMPLATES, YES, pick, render, slot_position

TASK = "perspective"
AXES = ("lr", "fb")
PREDICATES = pa.array(["right_of_person", "left_of_person", "behind_person", "in_front_of_person"])


def _candidates(view: SceneView):
    """(person, object, axis, truth, margin, threshold) of every clear person-object question."""
    s = view.settings
    person = (
        view.nameable & (view.facing >= 0) & (view.facing_confidence >= s.min_facing_confidence)
    )
    i, j = view.image_pairs(person | view.nameable, s.max_relation_objects_per_image)
    p = np.r_[i[person[i]], j[person[j]]]
    o = np.r_[j[person[i]], i[person[j]]]
    f = view.facing[p]
    m = 1000.0 * s.left_right_margin
    o_left, gap = view.clearly_left_of(o, p)
    o_right, _ = view.clearly_left_of(p, o)
    frontal = (f == FACING_TOWARD) | (f == FACING_AWAY)
    depth_ok = view.depth_ok[p] & view.depth_ok[o] & ~view.truncated[p] & ~view.truncated[o]
    dgap = view.near_score[o] - view.near_score[p]
    depth_clear = (
        depth_ok & (view.depth_kind[p] == view.depth_kind[o]) & (np.abs(dgap) > view.near_margin[p])
    )
    lr = frontal & (o_left | o_right)
    lr_truth = np.where(f == FACING_TOWARD, o_right, o_left)  # True = on the person's left
    fb_frontal = frontal & depth_clear
    fb_profile = ~frontal & (o_left | o_right)
    fb = fb_frontal | fb_profile
    fb_truth = np.where(
        frontal,
        np.where(f == FACING_TOWARD, dgap > 0, dgap < 0),
        np.where(f == FACING_LEFT, o_left, o_right),
    )
    fb_margin = np.where(frontal, np.abs(dgap), np.abs(gap))
    fb_threshold = np.where(frontal, view.near_margin[p], m)
    take = lambda x, k: x[k]
    return (
        np.r_[take(p, lr), take(p, fb)],
        np.r_[take(o, lr), take(o, fb)],
        np.r_[np.zeros(lr.sum(), np.int64), np.ones(fb.sum(), np.int64)],
        np.r_[lr_truth[lr], fb_truth[fb]],
        np.r_[np.abs(gap)[lr], fb_margin[fb]],
        np.r_[np.full(lr.sum(), m), fb_threshold[fb]],
        np.r_[np.zeros(lr.sum(), bool), fb_frontal[fb]],
    )


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    p, o, axis, truth, margin, threshold, by_depth = _candidates(view)
    key = combine(
        view.image_hash[view.img[p]],
        task_hash(TASK),
        view.obj_hash[p],
        view.obj_hash[o],
        axis,
        s.seed,
    )
    keep = balance.select(
        view.img[p], view.cat[o], mix(key, SALT_SELECT), s.max_pairs_per_image, s.max_category_share
    )
    p, o, axis, truth, margin, threshold, by_depth, key = (
        x[keep] for x in (p, o, axis, truth, margin, threshold, by_depth, key)
    )
    n = len(p)
    word = coin(mix(key, SALT_KIND)) < 0.5
    assign = mix(key, SALT_ASSIGN)
    for a in range(len(AXES)):
        rows = np.flatnonzero(word & (axis == a))
        word[rows[balance.surplus(truth[rows], assign[rows], s.balance_band)]] = False
    rank = balance.rank_within(np.where(word, -1, axis), assign)
    yes = rank % 2 == 0
    asks_pos = np.where(yes, truth, ~truth)
    h_tpl = mix(key, SALT_TEMPLATE)
    tpl = np.empty(n, dtype=np.int64)
    for a, name in enumerate(AXES):
        mw, my = word & (axis == a), ~word & (axis == a)
        if mw.any():
            tpl[mw] = pick(TASK, h_tpl[mw], "word", axis=name)
        if my.any():
            tpl[my] = pick(TASK, h_tpl[my], "yesno", axis=name, asks=asks_pos[my])
    phrase = references(view, RELATION_SAFE[TASK], TASK, fallback_box=True).phrase
    question = render(TASK, tpl, {"P": phrase.take(pa.array(p)), "O": phrase.take(pa.array(o))})
    ts = TEMPLATES[TASK]
    word_pos = pa.array([t.answers[0] if t.answers else "" for t in ts]).take(pa.array(tpl))
    word_neg = pa.array([t.answers[1] if t.answers else "" for t in ts]).take(pa.array(tpl))
    answer = pc.if_else(
        pa.array(word),
        pc.if_else(pa.array(truth), word_pos, word_neg),
        pc.if_else(pa.array(yes), YES, NO),
    )
    p_first = slot_position(TASK, tpl, "P") == 0
    first, second = np.where(p_first, p, o), np.where(p_first, o, p)
    facing_names = pa.array(list(FACING)).take(pa.array(view.facing[p]))
    predicate = PREDICATES.take(pa.array(axis * 2 + truth.astype(np.int64)))
    rows = pair_rows(
        view, view.img[p], tpl, question, answer, first, second, o, predicate, p,
        evidence={
            "depth_a": np.where(by_depth, view.depth[o], np.nan),
            "depth_b": np.where(by_depth, view.depth[p], np.nan),
            "margin": margin,
            "threshold": threshold,
            "score": view.facing_confidence[p],
            "note": facing_names,
        },
    )
    return build(view, TASK, rows)
