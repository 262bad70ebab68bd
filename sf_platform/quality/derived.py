"""Flat, derived columns of a QA table: what the expectation suites actually look at.

The QA table is nested (a list of mentioned objects, a fact struct, free-text answers); Great
Expectations checks flat columns.  Everything here is vectorised pyarrow/numpy (regexes run in
Arrow's RE2, never a Python loop over rows, except the rare grounding answer that is not in
the canonical one-object JSON form), so a 1M-row table derives in about a second.

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
    # object), "closed_answers", "task.<t>", "balance" (one row per signal and task), "volume"
    # (one per task).  ``row`` = QA row number where a frame's rows are not the QA rows.
    frames: dict
    answer_vocabulary: list[str]  # "<task>/<template_id> -> <answer>" of every code in closed_answers
    allowed_answer_codes: list[int]
    tasks: list[str]
    task_rows: dict[str, int]
    signal_rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (signal, task) -> rows with it
    signal_share: dict[tuple[str, str], float] = field(default_factory=dict)  # (signal, task) -> mean
    top_category: dict[str, tuple[str, float]] = field(default_factory=dict)  # task -> (category, share)
    have_scene: bool = False
    have_images: bool = False
    expected_images: int | None = None


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
    return _arr(a.take(pa.array(idx, pa.int64())))


def _take_or_null(a, idx: np.ndarray) -> pa.Array:
    """a[idx] with null where idx == -1."""
    a = _arr(a)
    if len(a) == 0:
        return pa.nulls(len(idx), a.type)
    taken = a.take(pa.array(np.where(idx < 0, 0, idx), pa.int64()))
    return pc.if_else(pa.array(idx < 0), pa.scalar(None, a.type), taken)


def _boxes_np(col) -> np.ndarray:
    """[N, 4] float array of a list<number> column (NaN rows for null or not-4-long boxes)."""
    a = _arr(col)
    out = np.full((len(a), 4), np.nan)
    if not len(a):
        return out
    lens = _np(_fill(pc.list_value_length(a), 0), np.int64)
    ok = lens == 4
    if ok.all() and a.offset == 0 and not pa.types.is_fixed_size_list(a.type):
        vals = a.values.slice(a.offsets[0].as_py(), 4 * len(a))
        return np.asarray(vals.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4)
    if ok.any():
        sub = a.filter(pa.array(ok)) if not ok.all() else a
        out[ok] = np.asarray(pc.list_flatten(sub).to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4)
    return out


def _encode(a) -> tuple[np.ndarray, list]:
    """Dictionary codes (int64, -1 for null) and the dictionary as Python values."""
    enc = _arr(pc.dictionary_encode(a))
    codes = _np(_fill(enc.indices, -1), np.int64)
    return codes, enc.dictionary.to_pylist()


def _per_task_image_counts(tcode: np.ndarray, img: np.ndarray, n_img: int, n_tasks: int):
    """(for every row: rows of its task on its image; per task: distinct images)."""
    if not len(tcode):
        return np.zeros(0), np.zeros(n_tasks, dtype=np.int64)
    key = tcode * max(n_img, 1) + img
    if n_tasks * max(n_img, 1) <= 50_000_000:  # dense counting is ~10x faster than sorting
        counts = np.bincount(key, minlength=n_tasks * max(n_img, 1))
        per_row = counts[key]
        per_task = np.count_nonzero(counts.reshape(n_tasks, -1), axis=1)
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
    way a skew means a model can guess the answer from the wording alone."""
    from_answer = _word_polarity(answer, yes_words, no_words)
    from_question = _word_polarity(question, yes_words, no_words)
    return np.where(np.isnan(from_answer), from_question, from_answer)


def yes_share_signal(answer) -> np.ndarray:
    """1.0 for a yes answer, 0.0 for a no answer, NaN for any other answer."""
    yes = _np(_fill(pc.match_substring_regex(answer, r"^\s*yes\b", ignore_case=True), False), bool)
    no = _np(_fill(pc.match_substring_regex(answer, r"^\s*no\b", ignore_case=True), False), bool)
    return np.where(yes, 1.0, np.where(no, 0.0, np.nan))


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


def box_strings(boxes: np.ndarray) -> np.ndarray:
    """Vectorised "[x1,y1,x2,y2]" strings of an [N, 4] box array (rows with NaN -> "")."""
    ok = ~np.isnan(boxes).any(axis=1)
    ints = np.where(ok[:, None], boxes, 0).astype(np.int64)
    parts = [pc.cast(pa.array(ints[:, i]), pa.string()) for i in range(4)]
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

    ``obj_start``/``obj_count`` locate each row's objects in the flat ``cats``/``coords``."""
    n = len(answers)
    out = np.full(n, UNPARSEABLE)
    if not n:
        return out
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


def answer_keys(task, template_id, answer, allowed: AllowedAnswers):
    """(row indices of closed-set templates, their ``"<task>/<template_id> -> <answer>"`` keys,
    every allowed key).

    A template the generator does not know (``allowed`` raises LookupError/ValueError) is
    treated as closed with an empty set, so its rows fail instead of passing unchecked.
    """
    tmpl = pc.binary_join_element_wise(_fill(task, ""), _fill(template_id, ""), "/")
    codes, names = _encode(tmpl)
    allowed_keys: set[str] = set()
    closed = np.zeros(len(names), dtype=bool)
    for i, key in enumerate(names):
        t, _, tid = key.partition("/")
        try:
            answers = allowed(t, tid)
        except (LookupError, ValueError):
            answers = frozenset()
        if answers is not None:
            closed[i] = True
            allowed_keys.update(f"{key} -> {a}" for a in answers)
    rows = np.nonzero(closed[codes])[0] if len(codes) else np.zeros(0, np.int64)
    keys = pc.binary_join_element_wise(_take(tmpl, rows), _fill(_take(answer, rows), "<null>"), " -> ")
    return rows, keys, sorted(allowed_keys)


# --- scene joins ----------------------------------------------------------------------------


def scene_columns(image_ids, object_ids, coords, scene: pa.Table) -> dict:
    """Per mentioned object: found in the scene (same image_id and object_id), its QA box's
    largest difference from the scene's bbox_1000, and the scene pixel box's overflow past the
    image border and shortest side (NaN where not found or no pixel box)."""
    key = lambda img, obj: pc.binary_join_element_wise(_fill(img, ""), _fill(obj, ""), "\x1f")
    pos = _np(_fill(pc.index_in(key(image_ids, object_ids), value_set=_arr(key(scene.column("image_id"), scene.column("object_id")))), -1), np.int64)
    found = pos >= 0
    m = len(pos)
    box_diff = np.full(m, np.nan)
    overflow = np.full(m, np.nan)
    min_side = np.full(m, np.nan)
    if found.any():
        take = pos[found]
        scene_box = _boxes_np(_take(scene.column("bbox_1000"), take))
        diff = np.abs(scene_box - coords[found]).max(axis=1)
        box_diff[found] = np.nan_to_num(diff, nan=UNPARSEABLE)
        if "bbox_px" in scene.column_names:
            px = _boxes_np(_take(scene.column("bbox_px"), take))
            w = _np(_take(scene.column("width"), take))
            h = _np(_take(scene.column("height"), take))
            overflow[found] = np.maximum(np.maximum(-px[:, 0], -px[:, 1]), np.maximum(px[:, 2] - w, px[:, 3] - h))
            min_side[found] = np.minimum(px[:, 2] - px[:, 0], px[:, 3] - px[:, 1])
    return {"in_scene": found.astype(np.float64), "scene_box_diff": box_diff,
            "px_overflow": overflow, "px_min_side": min_side}


def _subject_objects(ids, parent: np.ndarray, fact_subject, first: np.ndarray) -> np.ndarray:
    """Flat index of each row's object named by ``fact.subject`` (the object the pair is about:
    the perspective target rather than the person it mentions first), else its first object."""
    out = first.copy()
    if len(parent):
        hit = _np(_fill(pc.equal(ids, _take(fact_subject, parent)), False), bool)
        pos = np.nonzero(hit)[0]
        rows, keep = np.unique(parent[pos], return_index=True)
        out[rows] = pos[keep]
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
    import pandas as pd

    n = qa.num_rows
    # Combine each used column once (a QA table read from many Parquet row groups is chunked,
    # and every compute call on a chunked column would otherwise re-combine it).
    qa = pa.table({c: _arr(qa.column(c)) for c in ("qa_id", "task", "image_id", "image_uri", "question",
                                                   "answer", "template_id", "objects", "fact")})
    task_codes, present = _encode(_fill(qa.column("task"), ""))
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
    coords = _boxes_np(pc.struct_field(flat, "bbox_1000"))
    first = np.where(obj_count > 0, obj_start, -1)
    fact = _arr(qa.column("fact"))
    fact_subject, fact_value = pc.struct_field(fact, "subject"), pc.struct_field(fact, "value")
    answer, question = qa.column("answer"), qa.column("question")
    frames: dict[str, pd.DataFrame] = {}

    # pairs: identity and texts of every row
    qa_codes, _ = _encode(qa.column("qa_id"))
    img_codes, img_names = _encode(_fill(qa.column("image_uri"), ""))
    pairs_on_image, images_per_task = _per_task_image_counts(tcode, img_codes, len(img_names), len(task_names))
    pairs = {  # no "row" column: a pairs row is the QA row of the same position
        "qa_id_code": np.where(qa_codes < 0, np.nan, qa_codes.astype(np.float64)),
        "question_chars": _np(_fill(pc.utf8_length(pc.utf8_trim_whitespace(question)), 0)),
        "answer_chars": _np(_fill(pc.utf8_length(pc.utf8_trim_whitespace(answer)), 0)),
        "pairs_on_image": pairs_on_image,
        "pairs_cap": np.array([per_image_cap(t, settings) for t in task_names] or [0], dtype=np.float64)[tcode],
    }
    if images is not None:
        pairs["image_in_curated"] = _np(_fill(pc.is_in(qa.column("image_uri"), value_set=_arr(pc.unique(images.column("image_uri")))), False))
    frames["pairs"] = pd.DataFrame(pairs)

    closed_rows, keys, allowed_keys = answer_keys(qa.column("task"), qa.column("template_id"), answer, allowed)
    # Keys become integer codes into one vocabulary (allowed keys first, then whatever else was
    # seen): GX checks ints against the allowed codes ~10x faster than Python strings.
    seen = [k for k in pc.unique(keys).to_pylist() if k not in set(allowed_keys)]
    vocabulary = allowed_keys + sorted(seen)
    frames["closed_answers"] = pd.DataFrame({
        "row": closed_rows,
        "answer_code": _np(pc.index_in(keys, value_set=pa.array(vocabulary, pa.string())), np.int64) if len(closed_rows) else np.zeros(0, np.int64),
    })

    # A missing or short box reads as UNPARSEABLE coordinates, which the grid check rejects.
    objects = {"row": parent}
    for i, k in enumerate(("x1", "y1", "x2", "y2")):
        objects[k] = np.nan_to_num(coords[:, i], nan=UNPARSEABLE)
    if scene is not None:
        objects.update(scene_columns(_take(qa.column("image_id"), parent), ids, coords, scene))
    frames["objects"] = pd.DataFrame(objects)

    d = DerivedFrames(frames=frames, answer_vocabulary=vocabulary, allowed_answer_codes=list(range(len(allowed_keys))), tasks=task_names,
                      task_rows={t: len(r) for t, r in rows_of.items()}, have_scene=scene is not None,
                      have_images=images is not None, expected_images=expected_images)

    # one frame per task: category share and task-specific answers; balance signals are
    # aggregated to one share per (signal, task) right away (GX's column mean walks every value
    # in Python looking for Decimals: 0.4 s per million rows for a number numpy has in 1 ms).
    first_id = _take_or_null(ids, first)
    subject_obj = _subject_objects(ids, parent, fact_subject, first)
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
        d.top_category[t] = (cat_names[top], float(sizes[top] / len(r)))
        if t == "grounding":
            cols["grounding_box_diff"] = grounding_box_diff(ans_t, _take(fact_value, r), obj_start[r], obj_count[r], cats, coords)
        if t == "counting":
            cols["count_answer"] = parse_count(ans_t)
            cols["count_fact"] = parse_count(_take(fact_value, r))
        frames[f"task.{t}"] = pd.DataFrame(cols)

    frames["balance"] = pd.DataFrame(balance, columns=["key", "task", "signal", "rows", "share"])
    frames["volume"] = pd.DataFrame({
        "task": task_names,
        "rows": np.array([len(r) for r in rows_of.values()], dtype=np.float64),
        "images_with_pairs": images_per_task.astype(np.float64),
    })
    return d
