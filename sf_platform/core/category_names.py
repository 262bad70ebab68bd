"""How a dataset category reads in a question or an answer: singular and plural display names.

Raw class names are labels, not English: Objects365 has "Trash bin Can", "Other Shoes",
"Cabinet/shelf", "Glasses" (one box per pair) and typos ("Dinning Table"); OpenImages has
"Human face", "Kitchen & dining room table", "Jeans".  Put verbatim into "How many {C} are
there?" or "Is the {A} left of the {B}?" they give "how many trash bin cans" or "is the
glasses".  Every name a question or answer prints therefore goes through this module:

- a reviewed table, ``data/category_names.tsv``: every Objects365 class (as the file spells
  it, plus the corrected spelling of the seven typos :mod:`core.sources.categories` fixes) and
  the OpenImages boxable classes whose name is not plain English, each with the name of one
  instance and of several ("bench/benches", "person/people", "sheep/sheep", "pair of
  glasses/pairs of glasses");
- for any other category (the rest of OpenImages' 600 classes, PixMo labels, synthetic
  sources) a rule, :func:`fallback_name`: drop a parenthesised qualifier ("Pitcher
  (Container)" -> "pitcher"), read "A/B" as "a or b", lower-case every word except acronyms
  ("TV", "SUV"), and form the plural of the last word (:func:`plural`).  OpenImages' plain
  class names ("Bicycle wheel", "Coffee cup") come out right this way; the table overrides the
  ones that do not.

The table is matched exactly first, then ignoring case and repeated spaces.  Names are only
for display: ``objects.category`` keeps the source's own category for traceability.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

TABLE = "category_names.tsv"
COLUMNS = ("dataset", "category", "singular", "plural")

_INVARIANT_PLURALS = {
    "sheep",
    "deer",
    "fish",
    "people",
    "police",
    "cattle",
    "scissors",
    "glasses",
    "pants",
    "shorts",
}
# Singular nouns ending in a lone "s" (not "ss"/"us"/"is"), which the "already plural" rule
# would leave as they are ("how many canvas").  A list, not an "-as" rule: "cameras", "sofas"
# and "zebras" (PixMo labels can be plural) end in "-as" too.
_SINGULAR_S = {"canvas", "gas", "atlas", "alias", "bias", "pancreas", "lens", "christmas"}
_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "knife": "knives",
    "leaf": "leaves",
    "wolf": "wolves",
    "shelf": "shelves",
    "loaf": "loaves",
    "cactus": "cacti",
}
_QUALIFIER = re.compile(r"\s*\([^)]*\)")


class CategoryName(NamedTuple):
    singular: str  # one instance, without article
    plural: str  # several instances


def plural(name: str) -> str:
    """English plural of a display name (last word), leaving names that already are plural."""
    head, _, last = name.rpartition(" ")
    low = last.lower()
    if low in _INVARIANT_PLURALS or last.isupper() and last.endswith("s"):
        p = last
    elif low in _IRREGULAR:
        p = _IRREGULAR[low]
    elif low.endswith("s") and not low.endswith(("ss", "us", "is")) and low not in _SINGULAR_S:
        p = last  # "sneakers", "boots": already plural
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        p = last + "es"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def _lower_words(text: str) -> str:
    """Lower-case every word except acronyms ("TV", "SUV"), which stay as they are."""
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in text.split())


def fallback_name(category: str) -> CategoryName:
    """The rule for a category the table does not list (see the module docstring)."""
    text = _QUALIFIER.sub("", category).strip() or category.strip()
    parts = [_lower_words(p) for p in text.split("/") if p.strip()] or [_lower_words(text)]
    return CategoryName(" or ".join(parts), " or ".join(plural(p) for p in parts))


def _key(name: str) -> str:
    return " ".join(name.split()).lower()


@cache
def name_table() -> dict[str, CategoryName]:
    """The reviewed table, keyed by category (exact spelling and a case-folded key).

    Raises if a row is malformed or if two rows give one category two different names (the
    lookup does not know which dataset an object came from, so a clash must be resolved in the
    table itself).
    """
    text = resources.files("sf_platform.core.data").joinpath(TABLE).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    out: dict[str, CategoryName] = {}
    for n, row in enumerate(csv.reader(lines[1:], delimiter="\t"), start=2):
        if len(row) != len(COLUMNS) or not all(c.strip() for c in row):
            raise ValueError(f"{TABLE}: data row {n}: expected {len(COLUMNS)} non-empty columns {COLUMNS}, got {row}")
        name = CategoryName(row[2].strip(), row[3].strip())
        for key in (row[1], _key(row[1])):
            if out.get(key, name) != name:
                raise ValueError(f"{TABLE}: data row {n}: {row[1]!r} is named twice: {out[key]} and {name}")
            out[key] = name
    return out


@cache
def category_name(category: str) -> CategoryName:
    """Singular and plural display names of one category (table first, then the rule)."""
    table = name_table()
    return table.get(category) or table.get(_key(category)) or fallback_name(category)


def display_name(category: str) -> str:
    """The name of one instance of ``category`` as it reads inside a sentence."""
    return category_name(category).singular


def plural_name(category: str) -> str:
    """The name of several instances of ``category`` ("people", "benches", "sheep")."""
    return category_name(category).plural


def display_names(categories: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`display_name` over a column (computed once per distinct category; nulls stay)."""
    if isinstance(categories, pa.ChunkedArray):
        categories = categories.combine_chunks()
    categories = categories.cast(pa.string())
    uniq = pc.unique(categories.drop_null())
    names = pa.array([display_name(c) for c in uniq.to_pylist()], pa.string())
    return names.take(pc.index_in(categories, value_set=uniq))
