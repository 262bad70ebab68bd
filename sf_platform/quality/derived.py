"""Flat, derived columns of a QA table: what the expectation suites actually look at.

The QA table is nested (a list of mentioned objects, a fact struct, free-text answers); Great
Expectations checks flat columns.  Everything here is vectorised pyarrow/numpy (regexes run in
Arrow's RE2, never a Python loop over rows, except the rare grounding answer that is not in
the one-object JSON form), so a 1M-row table derives in about a second on one slow core.
What keeps it there (bench/validate.py): strings are hashed once per column and everything
downstream works on integer codes (tasks x templates x answers, image codes); per-scene-object
figures are computed once and gathered by position; text is only read where it can change the
answer (the first byte of an answer before a yes/no regex, the question only where the answer
says neither side, the edges of a text before stripping it); a task's rows are zero-copy
slices when they are one run; frames wrap the numpy columns without copying them.

The result is several *narrow* pandas frames, each holding ``row`` (the position in the QA
table, used to show offending rows) and only the columns of one concern, restricted to the
rows the concern applies to (``task.counting`` holds counting rows only).  Narrow frames matter:
GX's pandas engine copies the frame it filters, so one wide 1M-row frame costs ~4x more per
expectation than a frame of two columns.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.settings import QASettings

# Sentinel written into a derived numeric column when a value could not be parsed at all, so
# the range expectation fails on it (a NaN would be skipped as "missing" by GX).
UNPARSEABLE = -1.0
TWO_OBJECT_TASKS = ("near_far", "left_right")
LEFT_RIGHT_TASKS = ("left_right", "perspective")
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
    )
}
# Balance signals: column -> (tasks it applies to, None = every task that has such answers).
SIGNAL_TASKS: dict[str, tuple[str, ...] | None] = {
    "is_yes": None,
    "first_correct": TWO_OBJECT_TASKS,
    "says_left": LEFT_RIGHT_TASKS,
    "says_closer": ("near_far",),
}

AllowedAnswers = Callable[[str, str], "frozenset[str] | None"]


def per_image_cap(task: str, settings: QASettings) -> int:
    return settings.max_grounding_per_image if task == "grounding" else settings.max_pairs_per_image


@dataclass
class DerivedFrames:
    # frame name -> pandas DataFrame: "pairs" (one row per QA row), "objects" (one per mentioned
    # object), "closed_answers", "task.<t>", and the one-row "balance" (a column per
    # "<signal>/<task>" share) and "volume" (columns "rows/<task>", "images_with_pairs/<task>").
    # ``row`` = QA row number where a frame's rows are not the QA rows.
    frames: dict
    answer_vocabulary: list[str]  # "<task>/<template_id> -> <answer>" of every code in closed_answers
    allowed_answer_codes: list[int]
    tasks: list[str]
    task_rows: dict[str, int]
    signal_rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (signal, task) -> rows with it
    signal_share: dict[tuple[str, str], float] = field(default_factory=dict)  # (signal, task) -> mean
    top_category: dict[str, tuple[str, float]] = field(default_factory=dict)  # task -> (category, share)
    category_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> category -> rows
    have_scene: bool = False
    have_images: bool = False
    expected_images: int | None = None
    # (frame, column) of a balance/volume figure -> the record a reader sees when it fails
    summary: dict[tuple[str, str], dict] = field(default_factory=dict)


# --- small helpers --------------------------------------------------------------------------


def _arr(a) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        return a.chunk(0) if a.num_chunks == 1 else a.combine_chunks()
    return a


def _fill(a, value):
    """``fill_null`` that does not copy a column without nulls (the usual case)."""
    return a if a.null_count == 0 else pc.fill_null(a, value)


def _np(a, dtype=np.float64) -> np.ndarray:
    """Arrow numeric/bool -> numpy ``dtype`` (float: NaN for null)."""
    a = _arr(a)
    if pa.types.is_boolean(a.type) or dtype is np.float64:
        a = pc.cast(a, pa.float64())
    return np.asarray(a.to_numpy(zero_copy_only=False), dtype=dtype)


def _take(a, idx: np.ndarray) -> pa.Array:
    """a[idx]; a zero-copy slice when idx is one run of consecutive positions (a task's rows
    in a table partitioned or sorted by task: no copy of a million questions)."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx) and (np.diff(idx) == 1).all():
        return _arr(a.slice(int(idx[0]), len(idx)))
    return _arr(a.take(pa.array(idx, pa.int64())))


def _take_or_null(a, idx: np.ndarray) -> pa.Array:
    """a[idx] with null where idx == -1."""
    a = _arr(a)
    if len(a) == 0:
        return pa.nulls(len(idx), a.type)
    taken = a.take(pa.array(np.where(idx < 0, 0, idx), pa.int64()))
    return pc.if_else(pa.array(idx < 0), pa.scalar(None, a.type), taken)


def _frame(columns: dict):
    """A pandas frame over the numpy columns without copying them (pandas' default copies and
    consolidates: ~0.3 s for the million-mention objects frame)."""
    import pandas as pd

    return pd.DataFrame(columns, copy=False)


def _box_columns(col) -> np.ndarray:
    """[4, N] float array, one contiguous row per coordinate (x1, y1, x2, y2), of a
    list<number> column; NaN for null or not-4-long boxes.

    Column-major because the derived frames want each coordinate as its own column; the
    schemas' boxes are ``fixed_size_list<_, 4>``, read as one flat buffer (no per-row length
    check, no boolean scatter), which matters at a million boxes."""
    a = _arr(col)
    n = len(a)
    if pa.types.is_fixed_size_list(a.type) and a.type.list_size == 4 and n:
        vals = np.asarray(a.values.slice(a.offset * 4, n * 4).to_numpy(zero_copy_only=False)).reshape(n, 4)
        out = np.empty((4, n))
        for i in range(4):
            out[i] = vals[:, i]
        if a.null_count:
            out[:, _np(a.is_null(), bool)] = np.nan
        return out
    out = np.full((4, n), np.nan)
    if not n:
        return out
    ok = _np(_fill(pc.list_value_length(a), 0), np.int64) == 4
    if ok.any():
        sub = a.filter(pa.array(ok)) if not ok.all() else a
        out[:, ok] = np.asarray(pc.list_flatten(sub).to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4).T
    return out


def _boxes_np(col) -> np.ndarray:
    """[N, 4] float array of a list<number> column (a view of :func:`_box_columns`)."""
    return _box_columns(col).T


def _encode(a) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes (int64, -1 for null) and the dictionary (an Arrow array: turning a
    million distinct ids into Python strings would cost more than encoding them)."""
    enc = _arr(pc.dictionary_encode(a))
    codes = _np(_fill(enc.indices, -1), np.int64)
    return codes, enc.dictionary


# Bytes that may be (part of) whitespace: ASCII whitespace and separators, and every byte of a
# multi-byte character (U+00A0, U+3000 ... are whitespace too).
_MAYBE_SPACE = np.zeros(257, dtype=bool)  # index 256: no byte (empty or null string)
_MAYBE_SPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20]] = True
_MAYBE_SPACE[0x80:256] = True


def _edge_bytes(a: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(byte length, first byte, last byte) of every string, read off the offsets and data
    buffers (256 for an empty or null string)."""
    n = len(a)
    lens = _np(_fill(pc.binary_length(a), 0), np.int64)
    first = np.full(n, 256, dtype=np.int64)
    last = first.copy()
    if not n or a.buffers()[2] is None:
        return lens, first, last
    off_type = np.int64 if pa.types.is_large_string(a.type) or pa.types.is_large_binary(a.type) else np.int32
    offsets = np.frombuffer(a.buffers()[1], dtype=off_type)[a.offset:a.offset + n + 1]
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8)
    has = lens > 0
    if has.all():
        return lens, data[offsets[:-1]], data[offsets[1:] - 1]
    idx = np.nonzero(has)[0]
    first[idx], last[idx] = data[offsets[idx]], data[offsets[idx + 1] - 1]
    return lens, first, last


def stripped_bytes(text) -> np.ndarray:
    """UTF-8 length in bytes of each string after stripping whitespace (0 for null).

    Only whether it is 0 matters to the gate (a blank question or answer), so bytes stand in
    for characters, and only strings whose first or last byte may be whitespace are actually
    stripped: the rest (nearly all) read their length off the offsets without touching the text."""
    a = _arr(text)
    if not pa.types.is_string(a.type) and not pa.types.is_large_string(a.type):
        a = pc.cast(a, pa.string())
    lens, first, last = _edge_bytes(a)
    edge = (lens > 0) & (_MAYBE_SPACE[first] | _MAYBE_SPACE[last])
    if edge.any():
        idx = np.nonzero(edge)[0]
        lens[idx] = _np(pc.binary_length(pc.utf8_trim_whitespace(_take(a, idx))), np.int64)
    return lens.astype(np.float64)


def _per_task_image_counts(tcode: np.ndarray, img: np.ndarray, n_img: int, n_tasks: int):
    """(for every row: rows of its task on its image; per task: distinct images)."""
    if not len(tcode):
        return np.zeros(0), np.zeros(n_tasks, dtype=np.int64)
    key = tcode * max(n_img, 1) + img
    if n_tasks * max(n_img, 1) <= 50_000_000:  # dense counting is ~10x faster than sorting
        counts = np.bincount(key, minlength=n_tasks * max(n_img, 1))
        per_task = np.count_nonzero(counts.reshape(n_tasks, -1), axis=1)
        return counts.astype(np.float64)[key], per_task
    else:
        uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        per_row = cnt[inv]
        per_task = np.bincount(uniq // max(n_img, 1), minlength=n_tasks)
    return per_row.astype(np.float64), per_task


def _word_polarity(text, yes_words: str, no_words: str) -> np.ndarray:
    """1.0 if ``text`` says only one of ``yes_words``, 0.0 if only ``no_words``, NaN otherwise."""
    a = _np(_fill(pc.match_substring_regex(text, rf"\b({yes_words})\b", ignore_case=True), False), bool)
    b = _np(_fill(pc.match_substring_regex(text, rf"\b({no_words})\b", ignore_case=True), False), bool)
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
        yes = _np(_fill(pc.match_substring_regex(sub, r"^\s*yes\b", ignore_case=True), False), bool)
        no = _np(_fill(pc.match_substring_regex(sub, r"^\s*no\b", ignore_case=True), False), bool)
        out[rows] = np.where(yes, 1.0, np.where(no, 0.0, np.nan))
    return out


def parse_count(arr) -> np.ndarray:
    """The integer of a counting answer or fact value ("2", "There are 2.", "two"), else
    UNPARSEABLE (also for text with two numbers: which one is the count is ambiguous)."""
    text = pc.utf8_trim_whitespace(_fill(arr, ""))
    m = pc.extract_regex(text, r"^[^0-9]*?(?P<n>[0-9]+)[^0-9]*$")
    out = _np(pc.struct_field(m, "n")).copy() if len(text) else np.zeros(0)
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
    return np.where(ok, _np(s, object), "")


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
    ok &= _np(_fill(pc.match_substring_regex(cat, r'^[^"\\]+$'), False), bool)
    comma = [p for part in parts for p in (part, ", ")][:-1]
    answer = pc.binary_join_element_wise('{"bbox_2d": [', *comma, '], "label": "', cat, '"}', "")
    fact = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ","), "]", "")
    same = (_np(_fill(pc.equal(_take(answers, single), answer), False), bool)
            & _np(_fill(pc.equal(_take(fact_values, single), fact), False), bool))
    exact[single[same & ok]] = True
    return exact


def _grounding_diff_parsed(answers, fact_values, obj_start, obj_count, cats, coords) -> np.ndarray:
    """The regex and JSON tiers of :func:`grounding_box_diff`."""
    n = len(answers)
    out = np.full(n, UNPARSEABLE)
    m = pc.extract_regex(_fill(answers, ""), GROUNDING_RE)
    matched = _np(pc.is_valid(m), bool) & (obj_count == 1)
    fast = np.nonzero(matched)[0]
    if len(fast):
        mf = m.filter(pa.array(matched))
        ans_box = np.stack([_np(pc.struct_field(mf, k)) for k in "abcd"], axis=1)
        obj_box = coords[obj_start[fast]]
        diff = np.abs(ans_box - obj_box).max(axis=1)
        label = _np(pc.utf8_lower(pc.struct_field(mf, "label")), object)
        cat = _np(pc.utf8_lower(_fill(_take(cats, obj_start[fast]), "")), object)
        fact = _np(pc.replace_substring_regex(_fill(_take(fact_values, fast), ""), r"\s+", ""), object)
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
    ``bound``: a dense count when the range is small (~10x faster than sorting), else np.unique."""
    if bound <= 50_000_000:
        seen = np.bincount(values, minlength=bound) > 0
        distinct = np.flatnonzero(seen)
        slot = np.cumsum(seen) - 1
        return distinct, slot[values]
    return np.unique(values, return_inverse=True)


# --- scene joins ----------------------------------------------------------------------------


def scene_columns(image_ids, object_ids, box_columns: np.ndarray, scene: pa.Table,
                  boxless_ok: np.ndarray | None = None) -> dict:
    """Per mentioned object: found in the scene (same image_id and object_id), its QA box's
    largest difference from the scene's bbox_1000, and the scene pixel box's overflow past the
    image border and shortest side (NaN where not found or no pixel box).

    ``box_columns`` is the mentions' bbox_1000 as 4 contiguous rows (x1, y1, x2, y2: [4, M]).
    The join is one hash lookup of "image_id \x1f object_id" per mention; the pixel-box figures
    are computed once per scene object and gathered by position, and every step runs over whole
    1-D columns (a million-row [M, 4] temporary costs more in page faults than in arithmetic)."""
    m = box_columns.shape[1]
    if not m or not scene.num_rows:
        nan = np.full(m, np.nan)
        return {"in_scene": np.zeros(m), "scene_box_diff": nan, "px_overflow": nan, "px_min_side": nan.copy()}
    key = lambda img, obj: pc.binary_join_element_wise(_fill(img, ""), _fill(obj, ""), "\x1f")
    scene_keys = _arr(key(scene.column("image_id"), scene.column("object_id")))
    pos = _np(_fill(pc.index_in(key(image_ids, object_ids), value_set=scene_keys), -1), np.int64)
    found = pos >= 0
    at = np.where(found, pos, 0)
    lost = ~found

    def per_mention(per_scene_object: np.ndarray) -> np.ndarray:
        v = per_scene_object[at]
        v[lost] = np.nan
        return v

    scene_box = _box_columns(scene.column("bbox_1000"))
    diff = np.abs(scene_box[0][at] - box_columns[0])
    for i in (1, 2, 3):
        np.maximum(diff, np.abs(scene_box[i][at] - box_columns[i]), out=diff)  # NaN propagates
    unparsed = np.isnan(diff)
    if boxless_ok is not None:  # a counted point-only instance: no box here nor in the scene
        unparsed &= ~(boxless_ok & np.isnan(scene_box[0][at]))
    diff[unparsed] = UNPARSEABLE
    diff[lost] = np.nan
    out = {"in_scene": found.astype(np.float64), "scene_box_diff": diff,
           "px_overflow": np.full(m, np.nan), "px_min_side": np.full(m, np.nan)}
    if "bbox_px" in scene.column_names:
        px = _boxes_np(scene.column("bbox_px"))
        w, h = _np(scene.column("width")), _np(scene.column("height"))
        overflow = np.maximum(np.maximum(-px[:, 0], -px[:, 1]), np.maximum(px[:, 2] - w, px[:, 3] - h))
        min_side = np.minimum(px[:, 2] - px[:, 0], px[:, 3] - px[:, 1])
        out["px_overflow"], out["px_min_side"] = per_mention(overflow), per_mention(min_side)
    return out


def _subject_objects(ids, parent: np.ndarray, obj_count: np.ndarray, fact_subject, first: np.ndarray) -> np.ndarray:
    """Flat index of each row's object named by ``fact.subject`` (the object the pair is about:
    the perspective target rather than the person it mentions first), else its first object.
    Only rows mentioning several objects can differ from the first, so only they are compared."""
    out = first.copy()
    multi = np.nonzero(obj_count[parent] >= 2)[0] if len(parent) else np.zeros(0, np.int64)
    if len(multi):
        hit = _np(_fill(pc.equal(_take(ids, multi), _take(fact_subject, parent[multi])), False), bool)
        pos = multi[hit]
        rows = parent[pos]  # ascending: flat objects are in row order
        keep = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.zeros(0, bool)
        out[rows[keep]] = pos[keep]
    return out


# --- the frames -----------------------------------------------------------------------------


def derive(
    qa: pa.Table,
    settings: QASettings,
    allowed: AllowedAnswers,
    scene: pa.Table | None = None,
    images: pa.Table | None = None,
    expected_images: int | None = None,
    tasks: Iterable[str] | None = None,
) -> DerivedFrames:
    n = qa.num_rows
    # Combine each used column once (a QA table read from many Parquet row groups is chunked,
    # and every compute call on a chunked column would otherwise re-combine it).
    qa = pa.table({c: _arr(qa.column(c)) for c in ("qa_id", "task", "image_id", "image_uri", "question",
                                                   "answer", "template_id", "objects", "fact")})
    task_codes, present = _encode(_fill(qa.column("task"), ""))
    present = present.to_pylist()
    task_names = sorted(set(present) | set(tasks or ()))
    remap = np.array([task_names.index(t) for t in present] or [0], dtype=np.int64)
    tcode = remap[task_codes] if n else np.zeros(0, np.int64)
    rows_of = {t: np.nonzero(tcode == i)[0] for i, t in enumerate(task_names)}

    objs = _arr(qa.column("objects"))
    obj_count = _np(_fill(pc.list_value_length(objs), 0), np.int64) if n else np.zeros(0, np.int64)
    obj_start = np.r_[0, np.cumsum(obj_count)[:-1]] if n else np.zeros(0, np.int64)
    parent = np.repeat(np.arange(n), obj_count)
    flat = pc.list_flatten(objs)
    ids, cats = pc.struct_field(flat, "object_id"), pc.struct_field(flat, "category")
    box_columns = _box_columns(pc.struct_field(flat, "bbox_1000"))  # x1, y1, x2, y2 rows
    coords = box_columns.T  # [M, 4] view: one box per mentioned object
    first = np.where(obj_count > 0, obj_start, -1)
    fact = _arr(qa.column("fact"))
    fact_subject, fact_value = pc.struct_field(fact, "subject"), pc.struct_field(fact, "value")
    answer, question = qa.column("answer"), qa.column("question")
    frames: dict = {}  # name -> pandas DataFrame

    # pairs: identity and texts of every row
    qa_codes, _ = _encode(qa.column("qa_id"))
    uri = qa.column("image_uri")
    img_codes, img_names = _encode(_fill(uri, ""))
    pairs_on_image, images_per_task = _per_task_image_counts(tcode, img_codes, len(img_names), len(task_names))
    pairs = {  # no "row" column: a pairs row is the QA row of the same position
        "qa_id_code": np.where(qa_codes < 0, np.nan, qa_codes.astype(np.float64)),
        "question_bytes": stripped_bytes(question),
        "answer_bytes": stripped_bytes(answer),
        "pairs_on_image": pairs_on_image,
        "pairs_cap": np.array([per_image_cap(t, settings) for t in task_names] or [0], dtype=np.float64)[tcode],
    }
    if images is not None:  # looked up once per distinct image, not per row
        curated = _np(_fill(pc.is_in(img_names, value_set=_arr(pc.unique(images.column("image_uri")))), False))
        in_curated = curated[img_codes] if n else np.zeros(0)
        if uri.null_count:
            in_curated[_np(uri.is_null(), bool)] = 0.0
        pairs["image_in_curated"] = in_curated
    frames["pairs"] = _frame(pairs)

    # Closed-set answers become integer codes into one vocabulary (allowed keys first, then
    # whatever else was seen): GX checks ints against the allowed codes ~10x faster than strings.
    closed_rows, codes, vocabulary, n_allowed = answer_codes(tcode, task_names, qa.column("template_id"), answer, allowed)
    frames["closed_answers"] = _frame({"row": closed_rows, "answer_code": codes})

    # A missing or short box reads as UNPARSEABLE coordinates, which the grid check rejects,
    # except for the instances a counting question counts that have no box at all (PixMo
    # points the detector did not box): they stay missing, and the scene must agree.
    missing_box = np.isnan(box_columns)
    counting = task_names.index("counting") if "counting" in task_names else -1
    boxless_ok = missing_box.all(axis=0) & (tcode[parent] == counting) if len(parent) else np.zeros(0, bool)
    bad = missing_box & ~boxless_ok
    grid = np.where(bad, UNPARSEABLE, box_columns) if bad.any() else box_columns
    objects = {"row": parent, **dict(zip(("x1", "y1", "x2", "y2"), grid))}
    if scene is not None:
        objects.update(scene_columns(_take(qa.column("image_id"), parent), ids, box_columns, scene, boxless_ok))
    frames["objects"] = _frame(objects)

    d = DerivedFrames(frames=frames, answer_vocabulary=vocabulary, allowed_answer_codes=list(range(n_allowed)), tasks=task_names,
                      task_rows={t: len(r) for t, r in rows_of.items()}, have_scene=scene is not None,
                      have_images=images is not None, expected_images=expected_images)

    # one frame per task: category share and task-specific answers; balance signals are
    # aggregated to one share per (signal, task) right away (GX's column mean walks every value
    # in Python looking for Decimals: 0.4 s per million rows for a number numpy has in 1 ms).
    first_id = _take_or_null(ids, first)
    subject_obj = _subject_objects(ids, parent, obj_count, fact_subject, first)
    balance: list[tuple] = []
    for t, r in rows_of.items():
        if not len(r):
            continue
        ans_t, q_t = _take(answer, r), _take(question, r)
        signals = {"is_yes": yes_share_signal(ans_t)}
        if t in TWO_OBJECT_TASKS:
            same = _np(_fill(pc.equal(_take(fact_subject, r), _take(first_id, r)), False))
            signals["first_correct"] = np.where(obj_count[r] >= 2, same, np.nan)
        if t in LEFT_RIGHT_TASKS:
            signals["says_left"] = polarity(ans_t, q_t, "left", "right")
        if t == "near_far":
            signals["says_closer"] = polarity(ans_t, q_t, "closer|nearer", "farther|further")
        for signal, v in signals.items():
            has = ~np.isnan(v)
            if has.any():
                balance.append((f"{signal}/{t}", t, signal, int(has.sum()), float(v[has].mean())))
                d.signal_rows[(signal, t)] = int(has.sum())
                d.signal_share[(signal, t)] = float(v[has].mean())
        cols = {"row": r}
        category = _take(fact_subject, r) if t == "counting" else _take_or_null(cats, subject_obj[r])
        cat_codes, cat_names = _encode(_fill(category, "<none>"))
        sizes = np.bincount(cat_codes, minlength=len(cat_names))
        cols["category_share"] = sizes[cat_codes] / len(r)
        top = int(np.argmax(sizes))
        d.top_category[t] = (cat_names[top].as_py(), float(sizes[top] / len(r)))
        d.category_counts[t] = dict(zip(cat_names.to_pylist(), sizes.tolist()))
        if t == "grounding":
            cols["grounding_box_diff"] = grounding_box_diff(ans_t, _take(fact_value, r), obj_start[r], obj_count[r], cats, coords)
        if t == "counting":
            cols["count_answer"] = parse_count(ans_t)
            cols["count_fact"] = parse_count(_take(fact_value, r))
        frames[f"task.{t}"] = _frame(cols)

    # balance and volume: one row, one column per figure ("<signal>/<task>", "rows/<task>"), so
    # each expectation names its figure directly instead of filtering a long frame with a GX
    # row_condition (a pandas query per metric: ~0.15 s per validation for a handful of rows)
    frames["balance"] = _frame({key: np.array([share]) for key, _, _, _, share in balance})
    for key, t, signal, rows, share in balance:
        d.summary[("balance", key)] = {"key": key, "task": t, "signal": signal, "rows": rows, "share": share}
    volume = {}
    for i, (t, r) in enumerate(rows_of.items()):
        record = {"task": t, "rows": float(len(r)), "images_with_pairs": float(images_per_task[i])}
        for figure in ("rows", "images_with_pairs"):
            volume[f"{figure}/{t}"] = np.array([record[figure]])
            d.summary[("volume", f"{figure}/{t}")] = record
    frames["volume"] = _frame(volume)
    return d
