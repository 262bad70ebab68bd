"""Objects365 category names as people write them.

Objects365's category list (the same in v1 and v2, ``zhiyuan_objv2_*.json``) ships with
spelling mistakes.  The names end up verbatim in questions and answers ("How many dinning
tables are there?"), so a model trained on them learns the typos; every name is therefore
passed through :data:`OBJECTS365_NAME_FIXES` when the categories section is read.  The table
maps the name exactly as the file spells it to the intended name; names not listed pass through
unchanged (only surrounding whitespace is stripped).
"""

from __future__ import annotations

import pyarrow as pa

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
