"""What the answers of a QA table say, read vectorised: yes/no polarity, counts, grounding
boxes, and answers of closed sets as integer codes (inputs of :mod:`sf_platform.quality.derived`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.quality.columns import (
    _arr,
    _as_numpy,
    _edge_bytes,
    _encode,
    _fill,
    _take,
)

# Sentinel written into a derived numeric column when a value could not be parsed at all, so
# the range expectation fails on it (a NaN would be skipped as "missing" by GX).
UNPARSEABLE = -1.0
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
    )
}

AllowedAnswers = Callable[[str, str], "frozenset[str] | None"]


def _word_polarity(text, yes_words: str, no_words: str) -> np.ndarray:
    """1.0 if ``text`` says only one of ``yes_words``, 0.0 if only ``no_words``, NaN otherwise."""
    a = _as_numpy(_fill(pc.match_substring_regex(text, rf"\b({yes_words})\b", ignore_case=True), False), bool)
    b = _as_numpy(_fill(pc.match_substring_regex(text, rf"\b({no_words})\b", ignore_case=True), False), bool)
    out = np.full(len(a), np.nan)
    out[a & ~b] = 1.0
    out[b & ~a] = 0.0
    return out


def polarity(answer, question, yes_words: str, no_words: str) -> np.ndarray:
    """Polarity of a pair: what the answer says when it says it ("On their right."), else what
    the question asks ("Is the person to the left of ...?" / "Which is farther ...?").  Either
    way a skew means a model can guess the answer from the wording alone.  (The long question
    is scanned only for rows whose answer says neither.)"""
    out = _word_polarity(answer, yes_words, no_words)
    ask = np.nonzero(np.isnan(out))[0]
    if len(ask):
        out[ask] = _word_polarity(_take(question, ask), yes_words, no_words)
    return out


# First bytes that can start a yes/no answer (``^\s*(yes|no)\b``, any case).
_YES_NO_START = np.zeros(257, dtype=bool)
_YES_NO_START[[ord(c) for c in "yYnN\t\n\x0b\x0c\r "]] = True


def yes_share_signal(answer) -> np.ndarray:
    """1.0 for a yes answer, 0.0 for a no answer, NaN for any other answer.  The regexes run only
    on answers whose first byte can start one ("The chair." cannot), most of a mixed table."""
    a = _arr(answer)
    out = np.full(len(a), np.nan)
    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        rows = np.nonzero(_YES_NO_START[_edge_bytes(a)[1]])[0]
    else:
        rows = np.arange(len(a))
    if len(rows):
        sub = _take(a, rows)
        yes = _as_numpy(_fill(pc.match_substring_regex(sub, r"^\s*yes\b", ignore_case=True), False), bool)
        no = _as_numpy(_fill(pc.match_substring_regex(sub, r"^\s*no\b", ignore_case=True), False), bool)
        out[rows] = np.where(yes, 1.0, np.where(no, 0.0, np.nan))
    return out


def parse_count(arr) -> np.ndarray:
    """The integer of a counting answer or fact value ("2", "There are 2.", "two"), else
    UNPARSEABLE (also for text with two numbers: which one is the count is ambiguous)."""
    text = pc.utf8_trim_whitespace(_fill(arr, ""))
    m = pc.extract_regex(text, r"^[^0-9]*?(?P<n>[0-9]+)[^0-9]*$")
    out = _as_numpy(pc.struct_field(m, "n")).copy() if len(text) else np.zeros(0)
    missing = np.isnan(out)
    if missing.any():
        words = pc.replace_substring_regex(pc.utf8_lower(_take(text, np.nonzero(missing)[0])), r"[^a-z]", "")
        out[missing] = [float(NUMBER_WORDS.get(w, UNPARSEABLE)) for w in words.to_pylist()]
    return out


def _box_parts(boxes: np.ndarray) -> tuple[np.ndarray, list[pa.Array]]:
    """(rows whose 4 coordinates are all present, the 4 coordinates as decimal strings)."""
    ok = ~np.isnan(boxes).any(axis=1)
    ints = np.where(ok[:, None], boxes, 0).astype(np.int64)
    return ok, [pc.cast(pa.array(ints[:, i]), pa.string()) for i in range(4)]


def box_strings(boxes: np.ndarray) -> np.ndarray:
    """Vectorised "[x1,y1,x2,y2]" strings of an [N, 4] box array (rows with NaN -> "")."""
    ok, parts = _box_parts(boxes)
    s = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ","), "]", "")
    return np.where(ok, _as_numpy(s, object), "")


# --- grounding ------------------------------------------------------------------------------

GROUNDING_RE = (
    r'^\s*\{\s*"bbox_2d"\s*:\s*\[\s*(?P<a>-?\d+)\s*,\s*(?P<b>-?\d+)\s*,\s*(?P<c>-?\d+)\s*,\s*'
    r'(?P<d>-?\d+)\s*\]\s*,\s*"label"\s*:\s*"(?P<label>[^"\\]+)"\s*\}\s*$'
)


def parse_grounding(answer: str | None) -> list[tuple[tuple[int, ...], str]] | None:
    """Any JSON grounding answer: one ``{"bbox_2d": [4 ints], "label": str}`` or a non-empty
    list of them (several instances); ``None`` when it is anything else."""
    try:
        doc = json.loads(answer or "")
    except ValueError:
        return None
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for it in items:
        if not isinstance(it, dict) or set(it) != {"bbox_2d", "label"}:
            return None
        box, label = it["bbox_2d"], it["label"]
        if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)):
            return None
        if not isinstance(label, str) or not label.strip():
            return None
        out.append((tuple(box), label.strip().lower()))
    return out or None


def _parse_fact_boxes(value: str | None) -> list[tuple[int, ...]] | None:
    """Grounding ``fact.value``: "[x1,y1,x2,y2]" or a list of such boxes (several instances)."""
    try:
        doc = json.loads(value or "")
    except ValueError:
        return None
    if isinstance(doc, list) and len(doc) == 4 and all(type(v) is int for v in doc):
        return [tuple(doc)]
    if isinstance(doc, list) and doc and all(isinstance(b, list) and len(b) == 4 for b in doc):
        return [tuple(b) for b in doc]
    return None


def grounding_box_diff(answers, fact_values, obj_start, obj_count, cats, coords) -> np.ndarray:
    """Largest |answer coordinate - object coordinate| of each grounding row (0 = exact), or
    UNPARSEABLE when the answer is not the JSON form, its label is not the object's category
    (case-insensitive), the number of boxes differs, or ``fact.value`` disagrees.

    ``obj_start``/``obj_count`` locate each row's objects in the flat ``cats``/``coords``.
    Three tiers, cheapest first, each deciding what it can: the generator's exact form (string
    equality with the answer and fact rebuilt from the object), the one-object form with any
    spacing (a regex), anything else (JSON, in Python: several instances, odd forms)."""
    n = len(answers)
    out = np.full(n, UNPARSEABLE)
    if not n:
        return out
    answers, fact_values = _arr(answers), _arr(fact_values)
    exact = _canonical_grounding(answers, fact_values, obj_start, obj_count, cats, coords)
    out[exact] = 0.0
    rest = np.nonzero(~exact)[0]
    if len(rest):
        out[rest] = _grounding_diff_parsed(_take(answers, rest), _take(fact_values, rest), obj_start[rest],
                                           obj_count[rest], cats, coords)
    return out


def _canonical_grounding(answers, fact_values, obj_start, obj_count, cats, coords) -> np.ndarray:
    """Rows whose answer is exactly ``{"bbox_2d": [x1, y1, x2, y2], "label": "<category>"}`` of
    their one object (category lower-cased, as the generator writes it) and whose fact.value is
    exactly ``[x1,y1,x2,y2]``: those the regex tier would score 0, found by string equality."""
    exact = np.zeros(len(answers), dtype=bool)
    single = np.nonzero(obj_count == 1)[0]
    if not len(single):
        return exact
    ok, parts = _box_parts(coords[obj_start[single]])
    cat = pc.ascii_lower(_take(cats, obj_start[single]))
    # a label the regex would not read (empty, quote, backslash) is never "exact"
    ok &= _as_numpy(_fill(pc.match_substring_regex(cat, r'^[^"\\]+$'), False), bool)
    comma = [p for part in parts for p in (part, ", ")][:-1]
    answer = pc.binary_join_element_wise('{"bbox_2d": [', *comma, '], "label": "', cat, '"}', "")
    fact = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ","), "]", "")
    same = (_as_numpy(_fill(pc.equal(_take(answers, single), answer), False), bool)
            & _as_numpy(_fill(pc.equal(_take(fact_values, single), fact), False), bool))
    exact[single[same & ok]] = True
    return exact


def _grounding_diff_parsed(answers, fact_values, obj_start, obj_count, cats, coords) -> np.ndarray:
    """The regex and JSON tiers of :func:`grounding_box_diff`."""
    n = len(answers)
    out = np.full(n, UNPARSEABLE)
    m = pc.extract_regex(_fill(answers, ""), GROUNDING_RE)
    matched = _as_numpy(pc.is_valid(m), bool) & (obj_count == 1)
    fast = np.nonzero(matched)[0]
    if len(fast):
        mf = m.filter(pa.array(matched))
        ans_box = np.stack([_as_numpy(pc.struct_field(mf, k)) for k in "abcd"], axis=1)
        obj_box = coords[obj_start[fast]]
        diff = np.abs(ans_box - obj_box).max(axis=1)
        label = _as_numpy(pc.utf8_lower(pc.struct_field(mf, "label")), object)
        cat = _as_numpy(pc.utf8_lower(_fill(_take(cats, obj_start[fast]), "")), object)
        fact = _as_numpy(pc.replace_substring_regex(_fill(_take(fact_values, fast), ""), r"\s+", ""), object)
        bad = np.isnan(diff) | (label != cat) | (fact != box_strings(obj_box))
        out[fast] = np.where(bad, UNPARSEABLE, diff)
    slow = np.nonzero(~matched)[0]
    if len(slow):
        ans_list = _take(answers, slow).to_pylist()
        fact_list = _take(fact_values, slow).to_pylist()
        for j, ans, fv in zip(slow, ans_list, fact_list):
            out[j] = _grounding_diff_one(ans, fv, obj_start[j], obj_count[j], cats, coords)
    return out


def _grounding_diff_one(answer, fact_value, start, count, cats, coords) -> float:
    parsed = parse_grounding(answer)
    objs = coords[start:start + count]
    ocats = [(c or "").lower() for c in _arr(cats).slice(start, count).to_pylist()] if count else []
    fact_boxes = _parse_fact_boxes(fact_value)
    if parsed is None or fact_boxes is None or len(parsed) != count or np.isnan(objs).any():
        return UNPARSEABLE
    want = sorted((tuple(int(v) for v in b), c) for b, c in zip(objs, ocats))
    got = sorted(parsed)
    if sorted(c for _, c in want) != sorted(c for _, c in got) or not set(fact_boxes) <= {b for b, _ in want}:
        return UNPARSEABLE
    return float(np.abs(np.array([b for b, _ in got]) - np.array([b for b, _ in want])).max())


# --- answers in closed sets -----------------------------------------------------------------


def answer_codes(tcode: np.ndarray, task_names: list[str], template_id, answer, allowed: AllowedAnswers):
    """(row indices of closed-set templates, each such row's code into the vocabulary, the
    vocabulary of ``"<task>/<template_id> -> <answer>"`` keys: every allowed key first (sorted),
    then whatever else was seen (sorted), the number of allowed keys).

    A template the generator does not know (``allowed`` raises LookupError/ValueError) is
    treated as closed with an empty set, so its rows fail instead of passing unchecked.  Keys are
    built from integer codes (task x template x answer), one string per distinct key rather than
    one per row.
    """
    tid_codes, tid_names = _encode(_fill(template_id, ""))
    tids = tid_names.to_pylist()
    n_tid = max(len(tids), 1)
    tmpl = tcode * n_tid + tid_codes
    present = np.flatnonzero(np.bincount(tmpl, minlength=len(task_names) * n_tid)) if len(tmpl) else []
    closed = np.zeros(max(len(task_names), 1) * n_tid, dtype=bool)
    allowed_keys: set[str] = set()
    for k in present:
        t, tid = task_names[k // n_tid], tids[k % n_tid]
        try:
            answers = allowed(t, tid)
        except (LookupError, ValueError):
            answers = frozenset()
        if answers is not None:
            closed[k] = True
            allowed_keys.update(f"{t}/{tid} -> {a}" for a in answers)
    rows = np.nonzero(closed[tmpl])[0] if len(tmpl) else np.zeros(0, np.int64)
    allowed_sorted = sorted(allowed_keys)
    if not len(rows):
        return rows, np.zeros(0, np.int64), allowed_sorted, len(allowed_sorted)
    ans_codes, ans_names = _encode(_fill(_take(answer, rows), "<null>"))
    n_ans = max(len(ans_names), 1)
    combo = tmpl[rows] * n_ans + ans_codes
    distinct, inverse = _distinct(combo, len(closed) * n_ans)
    ans_list = ans_names.take(pa.array(distinct % n_ans)).to_pylist()
    keys = [f"{task_names[k // n_tid]}/{tids[k % n_tid]} -> {a}" for k, a in zip(distinct // n_ans, ans_list)]
    vocabulary = allowed_sorted + sorted(set(keys) - allowed_keys)
    index = {k: i for i, k in enumerate(vocabulary)}
    return rows, np.array([index[k] for k in keys], dtype=np.int64)[inverse], vocabulary, len(allowed_sorted)


def _distinct(values: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each value's position among them) of non-negative ints below
    ``bound``: a dense count when the range is small (cheaper than sorting), else np.unique."""
    if bound <= 50_000_000:
        seen = np.bincount(values, minlength=bound) > 0
        distinct = np.flatnonzero(seen)
        slot = np.cumsum(seen) - 1
        return distinct, slot[values]
    return np.unique(values, return_inverse=True)
