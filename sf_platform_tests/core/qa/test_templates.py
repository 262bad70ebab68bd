import numpy as np
import pyarrow as pa
import pytest

from sf_platform.core.qa import templates
from sf_platform.core.qa.templates import TEMPLATES, allowed_answers, pick, render


@pytest.mark.parametrize("task", ["near_far", "left_right", "perspective"])
def test_relation_tasks_have_at_least_eight_question_templates(task):
    ts = TEMPLATES[task]
    assert len({t.text for t in ts}) >= 8
    kinds = {t.kind for t in ts}
    assert {"yesno", "word"} <= kinds


def test_template_ids_are_unique_and_slots_parse():
    all_ids = [t.id for ts in TEMPLATES.values() for t in ts]
    assert len(all_ids) == len(set(all_ids))
    for ts in TEMPLATES.values():
        for t in ts:
            assert len(t.pieces) == len(t.slots) + 1
            assert "{" not in "".join(t.pieces)


def test_allowed_answers():
    assert allowed_answers("near_far", "nf.yp1") == frozenset({"Yes.", "No."})
    assert allowed_answers("left_right", "lr.w1") == frozenset({"To the left.", "To the right."})
    assert allowed_answers("grounding", "gr.s1") is None
    assert allowed_answers("counting", "ct.1") is None
    assert allowed_answers("near_far", "nf.cp1") is None  # choice: names an object
    with pytest.raises(KeyError):
        allowed_answers("near_far", "lr.w1")
    with pytest.raises(KeyError):
        allowed_answers("near_far", "nope")
    with pytest.raises(KeyError):
        allowed_answers("flying", "nf.yp1")


def test_render_fills_slots_in_template_order():
    ts = TEMPLATES["near_far"]
    w2 = next(i for i, t in enumerate(ts) if t.id == "nf.w2")  # mentions B before A
    yp1 = next(i for i, t in enumerate(ts) if t.id == "nf.yp1")
    q = render(
        "near_far",
        np.array([yp1, w2]),
        {"A": pa.array(["cup", "cup"]), "B": pa.array(["dog", "dog"])},
    )
    assert q.to_pylist() == [
        "Is the cup closer to the camera than the dog?",
        "Compared with the dog, is the cup nearer to the camera or farther from it?",
    ]
    assert templates.slot_position("near_far", np.array([yp1, w2]), "A").tolist() == [0, 1]


def test_pick_respects_kind_and_asks_and_is_deterministic():
    h = np.arange(1000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    asks = np.arange(1000) % 2 == 0
    tpl = pick("left_right", h, "yesno", asks=asks)
    ts = TEMPLATES["left_right"]
    assert all(ts[i].kind == "yesno" and (ts[i].asks == "positive") == a for i, a in zip(tpl, asks))
    assert len(set(tpl.tolist())) == 4  # every phrasing is used
    assert (pick("left_right", h, "yesno", asks=asks) == tpl).all()
