"""Two-object relation questions whose answer can be phrased either way round (near_far, left_right).

Given candidate pairs ``(pos, neg)`` -- ``pos`` is the object on the positive side of the axis
(closer, camera-left) -- this picks the pairs to ask (per-image cap, category share on the
``pos`` object's category), assigns each an answer kind, and balances the answers exactly:

- kind: choice ("Which is closer, A or B?"), yes/no ("Is A closer than B?") or word ("Is A
  closer or farther than B?"), a third each by a coin on the pair's hash;
- within each kind, rows ranked by another hash: ``rank % 2`` decides whether the correct
  object is mentioned first (choice), the answer is "Yes." (yes/no) or the positive word
  (word); ``rank // 2 % 2`` whether the question asks for the positive or negative side.

Both orders of a pair are thus available and the one asked is fixed by the pair's own hash,
so no answer can be learned from mention order or polarity.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa import balance
from sf_platform.core.qa.ids import coin, combine, hash_string, mix
from sf_platform.core.qa.references import RELATION_SAFE, references
from sf_platform.core.qa.rows import build, pair_rows, task_hash
from sf_platform.core.qa.scene_view import SceneView
from sf_platform.core.qa.templates import (
    NO,
    TEMPLATES,
    YES,
    concat,
    pick,
    render,
    slot_position,
)

KINDS = ("choice", "yesno", "word")
SALT_SELECT = hash_string("salt:select")
SALT_KIND = hash_string("salt:kind")
SALT_ASSIGN = hash_string("salt:assign")
SALT_TEMPLATE = hash_string("salt:template")


def pair_key(view: SceneView, task: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Hash of an unordered pair in its image (the same whichever way round it is asked)."""
    a, b = view.obj_hash[i], view.obj_hash[j]
    return combine(
        view.image_hash[view.img[i]],
        task_hash(task),
        np.minimum(a, b),
        np.maximum(a, b),
        view.settings.seed,
    )


def symmetric_relation(
    view: SceneView, task: str, pos: np.ndarray, neg: np.ndarray, predicate: str, evidence: dict
) -> pa.Table:
    s = view.settings
    key = pair_key(view, task, pos, neg)
    keep = balance.select(
        view.img[pos],
        view.cat[pos],
        mix(key, SALT_SELECT),
        s.max_pairs_per_image,
        s.max_category_share,
    )
    pos, neg, key = pos[keep], neg[keep], key[keep]
    evidence = {
        k: (v.filter(pa.array(keep)) if isinstance(v, pa.Array) else np.asarray(v)[keep])
        for k, v in evidence.items()
    }
    n = len(pos)
    kind = np.minimum((coin(mix(key, SALT_KIND)) * len(KINDS)).astype(np.int64), len(KINDS) - 1)
    rank = balance.rank_within(kind, mix(key, SALT_ASSIGN))
    first_or_yes = rank % 2 == 0
    asks_pos = (rank // 2) % 2 == 0
    # The object the question's polarity points at, and the first-mentioned object "A".
    target = np.where(asks_pos, pos, neg)
    other_of = lambda x: np.where(x == pos, neg, pos)
    a = np.where(
        kind == 2,
        np.where(first_or_yes, pos, neg),
        np.where(first_or_yes, target, other_of(target)),
    )
    b = other_of(a)
    h_tpl = mix(key, SALT_TEMPLATE)
    tpl = np.empty(n, dtype=np.int64)
    for k, name in enumerate(KINDS):
        m = kind == k
        if m.any():
            tpl[m] = pick(task, h_tpl[m], name, asks=None if name == "word" else asks_pos[m])
    phrase = references(view, RELATION_SAFE[task], task, fallback_box=True).phrase
    pa_a, pa_b = phrase.take(pa.array(a)), phrase.take(pa.array(b))
    question = render(task, tpl, {"A": pa_a, "B": pa_b})
    ts = TEMPLATES[task]
    word_pos = pa.array([t.answers[0] if t.answers else "" for t in ts]).take(pa.array(tpl))
    word_neg = pa.array([t.answers[1] if t.answers else "" for t in ts]).take(pa.array(tpl))
    choice_answer = concat("The ", phrase.take(pa.array(target)), ".")
    yesno_answer = pc.if_else(pa.array(first_or_yes), YES, NO)
    word_answer = pc.if_else(pa.array(first_or_yes), word_pos, word_neg)
    answer = pc.if_else(
        pa.array(kind == 0),
        choice_answer,
        pc.if_else(pa.array(kind == 1), yesno_answer, word_answer),
    )
    a_first = slot_position(task, tpl, "A") == 0
    first, second = np.where(a_first, a, b), np.where(a_first, b, a)
    rows = pair_rows(view, view.img[pos], tpl, question, answer, first, second, pos, predicate, neg, evidence)
    return build(view, task, rows)
