"""Category names: Objects365's spelling fixes, and every source's names made safe for text.

Objects365's category list (the same in v1 and v2, ``zhiyuan_objv2_*.json``) ships with
spelling mistakes.  The names end up verbatim in questions and answers ("How many dinning
tables are there?"), so a model trained on them learns the typos; every name is therefore
passed through :data:`OBJECTS365_NAME_FIXES` when the categories section is read.  The table
maps the name exactly as the file spells it to the intended name; names not listed pass through
unchanged (only surrounding whitespace is stripped).

Every name, whatever the source, then goes through :func:`clean_category_name` before it
reaches any question, answer or export (the index cleans the resolved ``category`` of every
object and PixMo's ``count_label``): category names are input we do not control, and a newline,
a bidirectional override (U+202E turns "left" into "tfel" on screen), a quote or ``<script>``
inside one ends up verbatim in training text and JSON exports.
"""

from __future__ import annotations

import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

OBJECTS365_NAME_FIXES: dict[str, str] = {
    "Dinning Table": "Dining Table",
    "Moniter/TV": "Monitor/TV",
    "Bakset": "Basket",
    "Mushroon": "Mushroom",
    "Campel": "Camel",
    "Buttefly": "Butterfly",
    "Hotair ballon": "Hot-air balloon",
}


def fix_category_name(name: str | None) -> str | None:
    """The corrected display name of one Objects365 category (``None`` stays ``None``)."""
    if name is None:
        return None
    name = name.strip()
    return OBJECTS365_NAME_FIXES.get(name, name)


def fix_category_names(names: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vectorised :func:`fix_category_name` over a (small) column of category names."""
    return pa.array([fix_category_name(n) for n in names.to_pylist()], pa.string())


_TAG = re.compile(r"<[^<>]*>")
_DOUBLE_QUOTES = frozenset('"`\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a')
_SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")
# Unicode categories dropped outright: format characters (bidi overrides and isolates, zero-width
# joiners, BOM), private use, surrogates and unassigned code points.
_DROPPED = frozenset({"Cf", "Co", "Cs", "Cn"})


def clean_category_name(name: str | None) -> str | None:
    """``name`` safe for training text: NFKC-normalised; markup tags, angle brackets, double
    quotes and backticks removed; control, format (bidi) and private-use characters removed,
    line breaks and tabs turned into spaces; whitespace collapsed.  A single quote survives only
    as an apostrophe between two letters ("Chef's knife" stays, "'chair'" becomes "chair").
    ``None`` stays ``None``; the result may be empty (the index then quarantines the object)."""
    if name is None:
        return None
    text = _TAG.sub(" ", unicodedata.normalize("NFKC", name))
    out: list[str] = []
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat in _DROPPED or ch in _DOUBLE_QUOTES or ch in "<>":
            continue
        if cat in ("Cc", "Zl", "Zp") or ch.isspace():
            out.append(" ")
        elif ch in _SINGLE_QUOTES:
            between = 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
            if between:
                out.append("'")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def clean_category_names(names: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vectorised :func:`clean_category_name` (each distinct name is cleaned once)."""
    arr = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
    uniques = pc.unique(arr)
    cleaned = pa.array([clean_category_name(n) for n in uniques.to_pylist()], pa.string())
    return cleaned.take(pc.index_in(arr, value_set=uniques))
