"""Checks every QA table must pass: schema, ids, boxes, and answers consistent with facts."""

from __future__ import annotations

import json
import re

import pyarrow as pa

from sf_platform.core import schemas
from sf_platform.core.qa.templates import BY_ID, TEMPLATES, YES, allowed_answers

QA_ID = re.compile(r"^[0-9a-f]{20}$")
BOX_TEXT = re.compile(r"\[(\d+), (\d+), (\d+), (\d+)\]")


def check_table(table: pa.Table, task: str) -> list[dict]:
    """Structural checks; returns the rows as dicts."""
    assert table.schema.equals(schemas.QA), table.schema
    rows = table.to_pylist()
    ids = [r["qa_id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for r in rows:
        assert QA_ID.match(r["qa_id"]), r["qa_id"]
        assert r["task"] == task
        assert r["template_id"] in {t.id for t in TEMPLATES[task]}
        allowed = allowed_answers(task, r["template_id"])
        if allowed is not None:
            assert r["answer"] in allowed, (r["template_id"], r["answer"])
        assert r["fact"] is not None and r["fact"]["predicate"]
        assert r["objects"] or task in ("counting", "conditional_counting"), r
        for o in r["objects"]:
            if o["bbox_1000"] is not None:
                x1, y1, x2, y2 = o["bbox_1000"]
                assert 0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 1000
        for m in BOX_TEXT.finditer(r["question"]):
            x1, y1, x2, y2 = map(int, m.groups())
            assert 0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 1000
        assert "<image>" not in r["question"]
    return rows


def slot_values(template_id: str, question: str) -> dict[str, str]:
    """The phrases a question put into its template's slots."""
    t = BY_ID[template_id]
    pattern = "".join(
        re.escape(p) + ("(.+?)" if k < len(t.slots) else "") for k, p in enumerate(t.pieces)
    )
    m = re.fullmatch(pattern, question)
    assert m, (template_id, question)
    return dict(zip(t.slots, m.groups()))


def check_phrase(phrase: str, o: dict) -> None:
    """A phrase names its object's category, and a printed box is the object's box."""
    m = BOX_TEXT.search(phrase)
    if m:
        assert list(map(int, m.groups())) == o["bbox_1000"], (phrase, o)


def check_relation_answers(table: pa.Table, task: str) -> list[dict]:
    """Relation answers agree with the fact, whatever the kind and mention order."""
    rows = check_table(table, task)
    for r in rows:
        t = BY_ID[r["template_id"]]
        subj, obj = r["fact"]["subject"], r["fact"]["object"]
        objs = r["objects"]
        ids = [o["object_id"] for o in objs]
        assert set(ids) == {subj, obj} and len(ids) == 2
        slots = slot_values(r["template_id"], r["question"])
        by_slot = {name: objs[k] for k, name in enumerate(t.slots)}  # objects are in mention order
        for name, o in by_slot.items():
            check_phrase(slots[name], o)
        if task == "perspective":
            pred = r["fact"]["predicate"]
            assert by_slot["O"]["object_id"] == subj and by_slot["P"]["object_id"] == obj
            assert t.axis == ("fb" if pred in ("in_front_of_person", "behind_person") else "lr")
            positive = pred in ("left_of_person", "in_front_of_person")
            if t.kind == "word":
                assert r["answer"] == t.answers[0 if positive else 1]
            else:
                assert (r["answer"] == YES) == ((t.asks == "positive") == positive)
            continue
        a = by_slot["A"]["object_id"]
        if t.kind == "choice":
            correct = subj if t.asks == "positive" else obj
            slot = "A" if a == correct else "B"
            assert r["answer"] == "The " + slots[slot] + ".", r
        elif t.kind == "yesno":
            asked = subj if t.asks == "positive" else obj
            assert (r["answer"] == YES) == (a == asked), r
        else:
            assert (r["answer"] == t.answers[0]) == (a == subj), r
    return rows


def grounding_boxes(answer: str) -> list[list[int]]:
    data = json.loads(answer)
    return [d["bbox_2d"] for d in (data if isinstance(data, list) else [data])]
