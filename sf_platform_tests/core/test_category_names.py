"""Category display names: the reviewed table, the fallback rule, and grammatical questions."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.core import category_names as cn
from sf_platform.core.qa.templates import TEMPLATES, render
from sf_platform.core.sources.categories import OBJECTS365_NAME_FIXES

# Nouns whose plural is the singular: only these may read the same in both forms.
INVARIANT = {"sheep", "deer", "fish", "goldfish", "jellyfish", "shrimp", "squid", "dice"}


def _rows(dataset=None):
    out = []
    text = (cn.resources.files("sf_platform.core.data") / cn.TABLE).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")][1:]
    for ln in lines:
        d, cat, sing, plur = ln.split("\t")
        if dataset in (None, d):
            out.append((d, cat, sing, plur))
    return out


def _head(name: str) -> str:
    """The head noun: "pair of glasses" -> "pair", "trash can" -> "can"."""
    return name.split(" of ")[0].split(" ")[-1] if " of " in name else name.split(" ")[-1]


def all_names() -> list[cn.CategoryName]:
    extra = ["Bicycle wheel", "Coffee cup", "TV", "Flower/Plant", "Pitcher (Container)", "Bus"]
    return [cn.category_name(c) for _, c, _, _ in _rows()] + [cn.category_name(c) for c in extra]


def test_objects365_table_covers_all_365_classes_and_their_fixed_spellings():
    raw = {c for _, c, _, _ in _rows("objects365")}
    fixed = set(OBJECTS365_NAME_FIXES.values())
    assert len(raw - fixed) == 365
    for typo, right in OBJECTS365_NAME_FIXES.items():
        assert typo in raw and right in raw
        assert cn.category_name(typo) == cn.category_name(right), typo


REVIEWED = {
    "Trash bin Can": ("trash can", "trash cans"),
    "Bench": ("bench", "benches"),
    "Person": ("person", "people"),
    "Sheep": ("sheep", "sheep"),
    "Glasses": ("pair of glasses", "pairs of glasses"),
    "Dinning Table": ("dining table", "dining tables"),
    "Human face": ("face", "faces"),
    "Kitchen & dining room table": ("dining table", "dining tables"),
    "SUV": ("SUV", "SUVs"),
    "trash  bin can": ("trash can", "trash cans"),  # matched ignoring case and repeated spaces
    "Bicycle wheel": ("bicycle wheel", "bicycle wheels"),  # not in the table: the rule
    "Flower/Plant": ("flower or plant", "flowers or plants"),
    "Pitcher (Container)": ("pitcher", "pitchers"),
    "TV": ("TV", "TVs"),
    "Brush": ("brush", "brushes"),
}


@pytest.mark.parametrize("category", sorted(REVIEWED))
def test_reviewed_examples_and_the_fallback_rule(category):
    assert cn.category_name(category) == REVIEWED[category]


def test_fallback_rule_applies_to_unlisted_names():
    assert cn.fallback_name("Flower/Plant") == REVIEWED["Flower/Plant"]
    assert "Bicycle wheel" not in cn.name_table() and "Flower/Plant" not in cn.name_table()


def test_singular_and_plural_forms_are_distinct_and_well_formed():
    plural_heads = {_head(n.plural) for n in all_names()}
    for n in all_names():
        assert n.singular and n.plural and n.singular == n.singular.strip()
        if n.singular == n.plural:
            assert _head(n.singular) in INVARIANT, n
        # the head noun of one instance is never a plural form ("is the glasses", "persons")
        head = _head(n.singular)
        assert head in INVARIANT or head not in plural_heads - {
            _head(m.singular) for m in all_names()
        }, n
        assert not n.plural.endswith("persons") and "personss" not in n.plural


def test_table_is_read_once_and_rejects_a_clash(monkeypatch):
    assert cn.name_table() is cn.name_table()
    bad = "dataset\tcategory\tsingular\tplural\nx\tFoo\tfoo\tfoos\ny\tfoo\tbar\tbars\n"

    class _F:
        def joinpath(self, _):
            return self

        def read_text(self, encoding):
            return bad

    monkeypatch.setattr(cn.resources, "files", lambda _pkg: _F())
    cn.name_table.cache_clear()
    try:
        with pytest.raises(ValueError, match="named twice"):
            cn.name_table()
    finally:
        monkeypatch.undo()
        cn.name_table.cache_clear()


def _slot_values(slot: str, names: list[cn.CategoryName]) -> pa.Array:
    if slot == "C":
        return pa.array([n.plural for n in names])
    if slot == "BOX":
        return pa.array(["[100, 200, 300, 400]"] * len(names))
    return pa.array([n.singular for n in names])


BAD = [
    (re.compile(r"\b[Aa] [aeiouAEIOU]"), "a + vowel"),
    (re.compile(r"\b[Aa]n [b-df-hj-np-tv-z]"), "an + consonant"),
    (re.compile(r"\bpersons\b|\bpeoples\b|\bsheeps\b|\bmouses\b"), "bad plural"),
    (re.compile(r"\bthe the\b|  "), "doubled word or space"),
]


@pytest.mark.parametrize("task", sorted(TEMPLATES))
def test_every_template_renders_every_class_name_grammatically(task):
    names = all_names()
    slots = sorted({s for t in TEMPLATES[task] for s in t.slots})
    for k, t in enumerate(TEMPLATES[task]):
        tpl = np.full(len(names), k, dtype=np.int64)
        questions = render(task, tpl, {s: _slot_values(s, names) for s in slots}).to_pylist()
        for q, n in zip(questions, names):
            for pattern, what in BAD:
                assert not pattern.search(q), (what, t.id, q)
            if "{C}" in t.text:
                assert n.plural in q, q
            else:  # "Is the {A} ...": one instance, named in the singular
                assert n.singular in q or "{BOX}" in t.text, q


def test_display_names_vectorised_keeps_nulls():
    got = cn.display_names(pa.array(["Trash bin Can", None, "Person", "Trash bin Can"]))
    assert got.to_pylist() == ["trash can", None, "person", "trash can"]
