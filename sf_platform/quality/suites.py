"""The write-audit-publish gate of a QA table: named expectations, each ERROR or WARN.

A QA table is validated in memory, before it is written (DESIGN.md: a reader never sees an
unchecked table).  The work splits in two:

- here, pure pyarrow/numpy turns the nested QA table into flat *derived* columns (box
  coordinates exploded one row per mentioned object, ``is_yes``, ``first_correct``,
  ``answer_key``, ``count_answer`` ...), vectorised so a 1M-row table derives in about a second;
- :mod:`sf_platform.quality.gx_runner` hands those frames to Great Expectations 1.x
  (imported only there, only when something is validated) and maps its results back.

Every expectation is named ``<group>.<name>`` with group one of ``boxes``, ``answers``,
``balance``, ``identity``, ``volume`` (the Dagster checks group them that way).

Severity (why ERROR or WARN):

- ERROR blocks publishing.  It is used where a failing row is *wrong* training data or a
  broken join: a box off the [0, 1000] grid or inverted, an answer outside its template's
  closed set, a grounding answer whose box is not the object's box, a count that disagrees with
  its fact or exceeds ``count_cap``, a duplicated or null ``qa_id``, an object or image that
  does not exist upstream, more pairs on an image than the generator's cap allows.
- Balance (yes/no, first-mentioned-correct, left/right, closer/farther) is ERROR, but only
  evaluated when a task has at least :func:`balance_min_rows` rows carrying that signal.  The
  threshold is where a fair coin misses the band with odds of ~6e-5 (4 standard deviations:
  ``n >= (4 * 0.5 / tolerance)^2``, 1,600 rows at the default +-0.05), so across ~10k
  partition x task x signal checks a correctly balancing generator is essentially never
  blocked by sampling noise, while a generator whose balancing broke (a skew of 0.1+) is caught
  in any partition big enough to measure it.  Below the threshold the expectation is reported
  as skipped: a shard with 40 left/right pairs cannot say anything about balance, and the
  release-wide validation (all shards together) covers it.
- Category share is WARN: which categories a shard holds is decided by its photos, not by the
  generator (a PixMo counting shard can be mostly people); the generator caps what it can, and
  a human judges the rest from the report.  Evaluated only above ``CATEGORY_MIN_ROWS``.
- Volume floors are ERROR for grounding/referring (every curated image with a box supports
  them: an empty task means a broken generator) and WARN for the content-dependent tasks
  (counting, near_far, left_right, perspective need repeated categories, depth, pairs or
  people, which a shard may legitimately lack).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.settings import QASettings
from sf_platform.core.schemas import TASKS

ERROR = "ERROR"
WARN = "WARN"

# Balance needs this many standard deviations of a fair coin inside the band (see module doc).
BALANCE_SIGMAS = 4.0
# Category share is a WARN over tasks with at least this many rows: below it one busy image
# (max_pairs_per_image pairs of one category) already moves the share by several points.
CATEGORY_MIN_ROWS = 200
# Pixel boxes may overshoot the image by sub-pixel rounding of the annotation tool (COCO boxes
# routinely end at W + 0.01); one pixel of slack separates that from a box that is really out.
PX_TOLERANCE = 1.0
# Volume floor per task: (minimum QA rows per expected image, severity).  Grounding and
# referring exist for nearly every curated image with a box; the others depend on content.
VOLUME_FLOORS: dict[str, tuple[float, str]] = {
    "grounding": (0.10, ERROR),
    "referring": (0.10, ERROR),
    "counting": (0.01, WARN),
    "near_far": (0.01, WARN),
    "left_right": (0.01, WARN),
    "perspective": (0.001, WARN),
}
# A volume floor is only meaningful for a shard with enough images to expect one pair.
VOLUME_MIN_IMAGES = 20
TWO_OBJECT_TASKS = ("near_far", "left_right")
LEFT_RIGHT_TASKS = ("left_right", "perspective")
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
# Sentinel written into a derived numeric column when a value could not be parsed at all, so
# the range expectation fails on it (a NaN would be skipped as "missing" by GX).
UNPARSEABLE = -1.0

AllowedAnswers = Callable[[str, str], "frozenset[str] | None"]


@dataclass
class ExpectationOutcome:
    name: str
    severity: str  # "ERROR" | "WARN"
    success: bool
    unexpected_count: int
    element_count: int
    observed: dict
    examples: list[dict]  # a few offending rows (qa_id, task, the bad value, question, answer)
    description: str = ""
    skipped: bool = False  # not evaluated (too few rows, no scene/images given)


@dataclass
class ValidationReport:
    table: str
    passed: bool  # no ERROR outcome failed
    outcomes: list[ExpectationOutcome]
    rows: int = 0
    seconds: float = 0.0
    data_docs_index: str | None = None  # local path of the built Data Docs index.html

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_metadata(self) -> dict:
        """Flat JSON-able numbers for Dagster metadata (no URIs, no credentials)."""
        failed = self.failures()
        meta: dict = {
            "qa_rows": int(self.rows),
            "passed": bool(self.passed),
            "expectations": len(self.outcomes),
            "expectations_skipped": sum(o.skipped for o in self.outcomes),
            "failed_error": sum(o.severity == ERROR for o in failed),
            "failed_warn": sum(o.severity == WARN for o in failed),
            "validate_seconds": round(float(self.seconds), 3),
        }
        for o in self.outcomes:
            if not o.skipped:
                meta[f"unexpected.{o.name}"] = int(o.unexpected_count)
            for k, v in o.observed.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    meta[f"observed.{o.name}.{k}"] = round(float(v), 4)
        return meta

    def summary_markdown(self) -> str:
        status = "passed" if self.passed else "FAILED"
        lines = [
            f"**{self.table}**: {status}, {self.rows:,} rows, {len(self.outcomes)} expectations "
            f"({len(self.failures())} failed, {sum(o.skipped for o in self.outcomes)} skipped)",
            "",
            "| expectation | severity | result | unexpected | rows |",
            "|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            res = "skipped" if o.skipped else ("ok" if o.success else "**failed**")
            lines.append(f"| {o.name} | {o.severity} | {res} | {o.unexpected_count:,} | {o.element_count:,} |")
        return "\n".join(lines)


def balance_min_rows(settings: QASettings) -> int:
    """Rows of one balance signal needed before its band is enforced (module doc)."""
    if settings.balance_tolerance <= 0:
        return 2**62
    return math.ceil((BALANCE_SIGMAS * 0.5 / settings.balance_tolerance) ** 2)


def per_image_cap(task: str, settings: QASettings) -> int:
    return settings.max_grounding_per_image if task == "grounding" else settings.max_pairs_per_image


# ---------------------------------------------------------------------------------------------
# Derived columns (pure pyarrow / numpy)
# ---------------------------------------------------------------------------------------------


def _np_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow numeric/bool -> float64 numpy with NaN for null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def _lower(arr) -> pa.ChunkedArray:
    return pc.utf8_lower(pc.fill_null(arr, ""))


def _word_polarity(text, yes_words: str, no_words: str) -> np.ndarray:
    """1.0 if ``text`` says only one of ``yes_words``, 0.0 if only ``no_words``, NaN otherwise."""
    a = pc.match_substring_regex(text, rf"\b({yes_words})\b").to_numpy(zero_copy_only=False)
    b = pc.match_substring_regex(text, rf"\b({no_words})\b").to_numpy(zero_copy_only=False)
    out = np.full(len(a), np.nan)
    out[a & ~b] = 1.0
    out[b & ~a] = 0.0
    return out


def _polarity(answer, question, yes_words: str, no_words: str) -> np.ndarray:
    """Polarity of a pair: what the answer says when it says it ("On their right."), else what
    the question asks ("Is the person to the left of ...?" / "Which is farther ...?")."""
    from_answer = _word_polarity(answer, yes_words, no_words)
    from_question = _word_polarity(question, yes_words, no_words)
    return np.where(np.isnan(from_answer), from_question, from_answer)


def _mask_tasks(values: np.ndarray, task: np.ndarray, tasks: Iterable[str]) -> np.ndarray:
    keep = np.isin(task, list(tasks))
    return np.where(keep, values, np.nan)


def _flat_objects(qa: pa.Table):
    """(parent row index, object_id, category, [N,4] int box with NaN for missing) of every
    mentioned object, plus per-row object counts."""
    objs = qa.column("objects").combine_chunks()
    if isinstance(objs, pa.ChunkedArray):  # empty table
        objs = pa.array([], type=objs.type)
    counts = pc.fill_null(pc.list_value_length(objs), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    parent = pc.list_parent_indices(objs).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(objs)
    ids = pc.struct_field(flat, "object_id")
    cats = pc.struct_field(flat, "category")
    boxes = pc.struct_field(flat, "bbox_1000")
    box_len = pc.fill_null(pc.list_value_length(boxes), 0).to_numpy(zero_copy_only=False)
    coords = np.full((len(flat), 4), np.nan)
    good = box_len == 4
    if good.any():
        vals = pc.list_flatten(boxes.filter(pa.array(good))).to_numpy(zero_copy_only=False)
        coords[good] = np.asarray(vals, dtype=np.float64).reshape(-1, 4)
    return parent, ids, cats, coords, counts


def _first_per_row(parent: np.ndarray, n_rows: int) -> np.ndarray:
    """Index into the flat object arrays of each row's first object, -1 for rows without."""
    first = np.full(n_rows, -1, dtype=np.int64)
    if len(parent):
        starts = np.r_[True, parent[1:] != parent[:-1]]
        first[parent[starts]] = np.nonzero(starts)[0]
    return first


def _take_or_null(arr, idx: np.ndarray):
    """arr[idx] with null where idx == -1."""
    safe = np.where(idx < 0, 0, idx)
    if len(arr) == 0:
        return pa.nulls(len(idx), arr.type)
    taken = pc.take(arr, pa.array(safe))
    return pc.if_else(pa.array(idx < 0), pa.scalar(None, arr.type), taken)


def _answer_keys(qa: pa.Table, allowed: AllowedAnswers):
    """(answer_key column, value set): ``"<task>/<template_id> -> <answer>"`` for rows whose
    template has a closed answer set (null otherwise), and every allowed key.

    A template the generator does not know (``allowed`` raises LookupError/ValueError) is
    treated as closed with an empty set, so its rows fail instead of passing unchecked.
    """
    tmpl = pc.binary_join_element_wise(pc.fill_null(qa.column("task"), ""), pc.fill_null(qa.column("template_id"), ""), "/")
    allowed_keys: set[str] = set()
    closed: list[str] = []
    pairs = qa.select(["task", "template_id"]).group_by(["task", "template_id"]).aggregate([])
    for task, template_id in zip(pairs.column("task").to_pylist(), pairs.column("template_id").to_pylist()):
        try:
            answers = allowed(task, template_id)
        except (LookupError, ValueError):
            answers = frozenset()
        if answers is None:
            continue
        key = f"{task or ''}/{template_id or ''}"
        closed.append(key)
        allowed_keys.update(f"{key} -> {a}" for a in answers)
    answer_key = pc.binary_join_element_wise(tmpl, pc.fill_null(qa.column("answer"), "<null>"), " -> ")
    is_closed = pc.is_in(tmpl, value_set=pa.array(closed, pa.string()))
    answer_key = pc.if_else(is_closed, answer_key, pa.scalar(None, pa.string()))
    return answer_key, sorted(allowed_keys)


_GROUNDING_RE = (
    r'^\s*\{\s*"bbox_2d"\s*:\s*\[\s*(?P<a>-?\d+)\s*,\s*(?P<b>-?\d+)\s*,\s*(?P<c>-?\d+)\s*,\s*'
    r'(?P<d>-?\d+)\s*\]\s*,\s*"label"\s*:\s*"(?P<label>[^"\\]+)"\s*\}\s*$'
)


def _parse_grounding_py(answer: str | None) -> list[tuple[tuple[int, ...], str]] | None:
    """The slow path: any JSON form (single object, a list for multi-instance, other key order)."""
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
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
            return None
        if not isinstance(label, str) or not label.strip():
            return None
        out.append((tuple(box), label.strip().lower()))
    return out or None


def _parse_boxes_value(value: str | None) -> list[tuple[int, ...]] | None:
    """``fact.value`` of grounding: "[x1,y1,x2,y2]" or a list of such boxes (multi-instance)."""
    try:
        doc = json.loads(value or "")
    except ValueError:
        return None
    if isinstance(doc, list) and len(doc) == 4 and all(isinstance(v, int) for v in doc):
        return [tuple(doc)]
    if isinstance(doc, list) and doc and all(isinstance(b, list) and len(b) == 4 for b in doc):
        return [tuple(b) for b in doc]
    return None


def _grounding_diff(qa: pa.Table, task: np.ndarray, parent, cats, coords, counts) -> np.ndarray:
    """Largest |answer coordinate - object coordinate| of each grounding row (0 = exact), or
    UNPARSEABLE when the answer is not the JSON form, names another label, has a different
    number of boxes, or ``fact.value`` disagrees.  NaN for other tasks."""
    n = qa.num_rows
    out = np.full(n, np.nan)
    rows = np.nonzero(task == "grounding")[0]
    if not len(rows):
        return out
    sub = qa.take(pa.array(rows))
    answers = sub.column("answer")
    m = pc.extract_regex(pc.fill_null(answers, ""), _GROUNDING_RE)
    matched = pc.is_valid(m).to_numpy(zero_copy_only=False) & (counts[rows] == 1)
    first = _first_per_row(parent, n)[rows]
    fact_val = pc.struct_field(sub.column("fact").combine_chunks(), "value") if sub.num_rows else pa.array([], pa.string())
    fact_norm = pc.replace_substring_regex(pc.fill_null(fact_val, ""), r"\s+", "")
    # Fast path: single-object rows in the canonical form.
    fast = np.nonzero(matched)[0]
    if len(fast):
        mf = m.filter(pa.array(matched))
        ans_box = np.stack([pc.cast(pc.struct_field(mf, k), pa.float64()).to_numpy(zero_copy_only=False) for k in "abcd"], axis=1)
        obj_box = coords[first[fast]]
        diff = np.nanmax(np.abs(ans_box - obj_box), axis=1)
        diff = np.where(np.isnan(obj_box).any(axis=1), UNPARSEABLE, diff)
        label = _lower(pc.struct_field(mf, "label")).to_numpy(zero_copy_only=False)
        cat = _lower(_take_or_null(cats, first[fast])).to_numpy(zero_copy_only=False)
        obj_str = np.array(["[" + ",".join(str(int(v)) for v in b) + "]" if not np.isnan(b).any() else "" for b in obj_box]) \
            if len(fast) < 2048 else _box_strings(obj_box)
        fv = fact_norm.filter(pa.array(matched)).to_numpy(zero_copy_only=False)
        bad = (label != cat) | (fv != obj_str)
        out[rows[fast]] = np.where(bad, UNPARSEABLE, diff)
    # Slow path: everything else (multi-instance lists, other layouts, garbage).
    slow = np.nonzero(~matched)[0]
    if len(slow):
        ans_list = answers.take(pa.array(slow)).to_pylist()
        fv_list = fact_val.take(pa.array(slow)).to_pylist()
        starts = np.r_[0, np.cumsum(counts)]
        cat_list = cats.to_pylist() if len(slow) else []
        for j, ans, fv in zip(slow, ans_list, fv_list):
            r = rows[j]
            parsed = _parse_grounding_py(ans)
            objs = coords[starts[r]:starts[r + 1]]
            ocats = [(c or "").lower() for c in cat_list[starts[r]:starts[r + 1]]]
            fact_boxes = _parse_boxes_value(fv)
            if parsed is None or len(parsed) != len(objs) or np.isnan(objs).any() or fact_boxes is None:
                out[r] = UNPARSEABLE
                continue
            want = sorted((tuple(int(v) for v in b), c) for b, c in zip(objs, ocats))
            got = sorted(parsed)
            if [c for _, c in want] != [c for _, c in got] or not set(fact_boxes) <= {b for b, _ in want}:
                out[r] = UNPARSEABLE
                continue
            out[r] = float(np.max(np.abs(np.array([b for b, _ in got]) - np.array([b for b, _ in want]))))
    return out


def _box_strings(boxes: np.ndarray) -> np.ndarray:
    """Vectorised "[x1,y1,x2,y2]" strings of an [N, 4] float box array (NaN rows -> "")."""
    ok = ~np.isnan(boxes).any(axis=1)
    ints = np.where(ok[:, None], boxes, 0).astype(np.int64)
    parts = [pc.cast(pa.array(ints[:, i]), pa.string()) for i in range(4)]
    joined = pc.binary_join_element_wise(*parts, ",")
    s = pc.binary_join_element_wise("[", joined, "]", "").to_numpy(zero_copy_only=False)
    return np.where(ok, s, "")


def _parse_count(arr) -> np.ndarray:
    """Integer in a counting answer or fact value ("2", "There are 2.", "two"), else UNPARSEABLE."""
    text = pc.utf8_trim_whitespace(_lower(arr))
    m = pc.extract_regex(text, r"^[^0-9]*?(?P<n>[0-9]+)[^0-9]*$")
    out = pc.cast(pc.struct_field(m, "n"), pa.float64()).to_numpy(zero_copy_only=False).copy()
    word = pc.replace_substring_regex(text, r"[^a-z]", "").to_numpy(zero_copy_only=False)
    missing = np.isnan(out)
    out[missing] = [float(NUMBER_WORDS.get(w, UNPARSEABLE)) for w in word[missing]]
    return out


def _per_group_counts(task_codes: np.ndarray, key) -> np.ndarray:
    """For every row, how many rows share its (task, key)."""
    enc = pc.dictionary_encode(pc.fill_null(key, "")).combine_chunks() if isinstance(key, pa.ChunkedArray) else pc.dictionary_encode(pc.fill_null(key, ""))
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_keys = max(len(enc.dictionary), 1)
    combined = task_codes * n_keys + codes
    counts = np.bincount(combined, minlength=1)
    return counts[combined].astype(np.float64)


@dataclass
class DerivedFrames:
    pairs: "object"  # pandas DataFrame, one row per QA pair
    objects: "object"  # pandas DataFrame, one row per mentioned object
    volume: "object"  # pandas DataFrame, one row per task
    allowed_answer_keys: list[str]
    balance_rows: dict[tuple[str, str], int]  # (signal, task) -> rows carrying the signal
    category_tasks: list[str]  # tasks big enough for the category-share WARN
    have_scene: bool
    have_images: bool
    expected_images: int | None
    tasks: list[str]


def derive(
    qa: pa.Table,
    settings: QASettings,
    allowed: AllowedAnswers,
    scene: pa.Table | None = None,
    images: pa.Table | None = None,
    expected_images: int | None = None,
    tasks: Iterable[str] | None = None,
) -> DerivedFrames:
    """Flat columns of ``qa`` that the expectations read (see each column's comment)."""
    import pandas as pd

    n = qa.num_rows
    task_arr = pc.fill_null(qa.column("task"), "")
    task = task_arr.to_numpy(zero_copy_only=False).astype(object) if n else np.array([], dtype=object)
    task_names = sorted(set(task.tolist()) | set(tasks or ()))
    task_code = np.searchsorted(np.array(task_names, dtype=object), task) if n else np.zeros(0, np.int64)
    answer = _lower(qa.column("answer"))
    question = _lower(qa.column("question"))
    parent, ids, cats, coords, counts = _flat_objects(qa)
    first = _first_per_row(parent, n)
    fact = qa.column("fact").combine_chunks() if n else pa.array([], qa.schema.field("fact").type)
    fact_subject = pc.struct_field(fact, "subject")
    fact_value = pc.struct_field(fact, "value")

    # --- pairs frame ------------------------------------------------------------------------
    answer_key, allowed_keys = _answer_keys(qa, allowed)
    is_yesno = pc.match_substring_regex(answer, r"^\s*(yes|no)\b").to_numpy(zero_copy_only=False)
    is_yes = np.where(is_yesno, pc.starts_with(pc.utf8_trim_whitespace(answer), "yes").to_numpy(zero_copy_only=False), np.nan)
    first_id = _take_or_null(ids, first)
    first_correct = pc.equal(fact_subject, first_id).to_numpy(zero_copy_only=False)
    first_correct = np.where(counts >= 2, first_correct.astype(np.float64), np.nan)
    is_counting = task == "counting"
    category = pc.if_else(pa.array(is_counting), fact_subject, _take_or_null(cats, first)) if n else pa.array([], pa.string())
    category = pc.fill_null(category, "<none>")
    category_rows = _per_group_counts(task_code, category)
    task_rows = np.bincount(task_code, minlength=len(task_names)).astype(np.float64) if n else np.zeros(len(task_names))
    category_share = category_rows / np.maximum(task_rows[task_code], 1) if n else np.zeros(0)
    category_tasks = [t for i, t in enumerate(task_names) if task_rows[i] >= CATEGORY_MIN_ROWS]
    category_share = _mask_tasks(category_share, task, category_tasks)
    image_key = pc.fill_null(qa.column("image_id"), "")
    if "source" in qa.column_names:
        image_key = pc.binary_join_element_wise(pc.fill_null(qa.column("source"), ""), image_key, "\x1f")
    pairs_on_image = _per_group_counts(task_code, image_key)
    count_answer = np.where(is_counting, _parse_count(qa.column("answer")), np.nan)
    count_fact = np.where(is_counting, _parse_count(fact_value), np.nan)

    pairs = pd.DataFrame(
        {
            "row": np.arange(n, dtype=np.int64),
            "qa_id": qa.column("qa_id").to_pandas(),
            "task": pd.Categorical(task, categories=task_names),
            # Stripped text lengths: an empty question or answer is no training pair.
            "question_chars": _np_float(pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(qa.column("question"))), 0)),
            "answer_chars": _np_float(pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(qa.column("answer"))), 0)),
            # "<task>/<template_id> -> <answer>" for closed-set templates, null for open ones.
            "answer_key": answer_key.to_pandas() if n else pd.Series([], dtype="str"),
            "grounding_box_diff": _grounding_diff(qa, task, parent, cats, coords, counts),
            "count_answer": count_answer,
            "count_fact": count_fact,
            "is_yes": is_yes,
            "first_correct": _mask_tasks(first_correct, task, TWO_OBJECT_TASKS),
            "says_left": _mask_tasks(_polarity(answer, question, "left", "right"), task, LEFT_RIGHT_TASKS),
            "says_closer": _mask_tasks(_polarity(answer, question, "closer|nearer", "farther|further"), task, ("near_far",)),
            "category": category.to_pandas() if n else pd.Series([], dtype="str"),
            "category_share": category_share,
            "pairs_on_image": pairs_on_image,
            "pairs_cap": np.array([per_image_cap(t, settings) for t in task_names], dtype=np.float64)[task_code] if n else np.zeros(0),
            "image_in_curated": _membership(qa.column("image_uri"), images.column("image_uri") if images is not None else None),
        }
    )
    balance_rows = {}
    for signal in ("is_yes", "first_correct", "says_left", "says_closer"):
        notna = ~np.isnan(pairs[signal].to_numpy())
        for i, t in enumerate(task_names):
            k = int(np.count_nonzero(notna & (task_code == i)))
            if k:
                balance_rows[(signal, t)] = k

    # --- objects frame ----------------------------------------------------------------------
    obj = {
        "row": parent,
        "qa_id": pc.take(qa.column("qa_id"), pa.array(parent)).to_pandas() if len(parent) else pd.Series([], dtype="str"),
        "task": pd.Categorical(task[parent] if len(parent) else [], categories=task_names),
        "x1": coords[:, 0], "y1": coords[:, 1], "x2": coords[:, 2], "y2": coords[:, 3],
        # A missing/short box gets UNPARSEABLE so the range check fails on it.
        "box_len_ok": np.where(np.isnan(coords).any(axis=1), 0.0, 1.0),
    }
    for k in ("x1", "y1", "x2", "y2"):
        obj[k] = np.where(np.isnan(obj[k]), UNPARSEABLE, obj[k])
    obj.update(_scene_columns(qa, parent, ids, coords, scene))
    objects = pd.DataFrame(obj)

    # --- volume frame -----------------------------------------------------------------------
    images_per_task = {}
    for i, t in enumerate(task_names):
        images_per_task[t] = int(len(pc.unique(image_key.filter(pa.array(task_code == i))))) if n else 0
    volume = pd.DataFrame(
        {
            "task": task_names,
            "rows": [float(task_rows[i]) if n else 0.0 for i in range(len(task_names))],
            "images_with_pairs": [float(images_per_task[t]) for t in task_names],
        }
    )
    return DerivedFrames(
        pairs=pairs, objects=objects, volume=volume, allowed_answer_keys=allowed_keys,
        balance_rows=balance_rows, category_tasks=category_tasks, have_scene=scene is not None,
        have_images=images is not None, expected_images=expected_images, tasks=task_names,
    )


def _membership(values, universe) -> np.ndarray:
    """1.0 if a value is in ``universe``, 0.0 if not, NaN everywhere when there is no universe."""
    n = len(values)
    if universe is None:
        return np.full(n, np.nan)
    found = pc.is_in(values, value_set=pc.unique(universe.combine_chunks() if isinstance(universe, pa.ChunkedArray) else universe))
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False).astype(np.float64)


def _scene_columns(qa: pa.Table, parent, ids, coords, scene: pa.Table | None) -> dict:
    """Per mentioned object: exists in the scene, its QA box equals the scene box, and the
    scene's pixel box lies inside the image.  NaN throughout when no scene is given."""
    m = len(parent)
    nan = np.full(m, np.nan)
    if scene is None:
        return {"in_scene": nan, "scene_box_diff": nan.copy(), "px_overflow": nan.copy(), "px_min_side": nan.copy()}
    img_ids = pc.take(pc.fill_null(qa.column("image_id"), ""), pa.array(parent)) if m else pa.array([], pa.string())
    left = pa.table({"image_id": img_ids, "object_id": pc.fill_null(ids, ""), "_i": np.arange(m)})
    right_cols = {
        "image_id": pc.fill_null(scene.column("image_id"), ""),
        "object_id": pc.fill_null(scene.column("object_id"), ""),
        "_s": np.arange(scene.num_rows),
    }
    right = pa.table(right_cols)
    joined = left.join(right, ["image_id", "object_id"], join_type="left outer")
    i = joined.column("_i").to_numpy()
    s = pc.fill_null(joined.column("_s"), -1).to_numpy()
    # A duplicated (image_id, object_id) in the scene would multiply rows; keep the first match.
    order = np.argsort(i, kind="stable")
    i, s = i[order], s[order]
    keep = np.r_[True, i[1:] != i[:-1]] if len(i) else np.zeros(0, bool)
    s_of = np.full(m, -1, dtype=np.int64)
    s_of[i[keep]] = s[keep]
    found = s_of >= 0
    in_scene = found.astype(np.float64)
    scene_box = np.full((m, 4), np.nan)
    px = np.full((m, 4), np.nan)
    wh = np.full((m, 2), np.nan)
    if found.any():
        take = pa.array(s_of[found])
        sb = scene.column("bbox_1000").take(take)
        scene_box[found] = _boxes_np(sb)
        if "bbox_px" in scene.column_names:
            px[found] = _boxes_np(scene.column("bbox_px").take(take))
            wh[found, 0] = _np_float(scene.column("width").take(take))
            wh[found, 1] = _np_float(scene.column("height").take(take))
    scene_box_diff = np.where(found, np.abs(np.nan_to_num(scene_box, nan=1e6) - np.nan_to_num(coords, nan=-1e6)).max(axis=1), np.nan)
    has_px = found & ~np.isnan(px).any(axis=1) & ~np.isnan(wh).any(axis=1)
    overflow = np.max(np.stack([-px[:, 0], -px[:, 1], px[:, 2] - wh[:, 0], px[:, 3] - wh[:, 1]], axis=1), axis=1) if m else nan
    min_side = np.minimum(px[:, 2] - px[:, 0], px[:, 3] - px[:, 1]) if m else nan
    return {
        "in_scene": in_scene,
        "scene_box_diff": scene_box_diff,
        "px_overflow": np.where(has_px, overflow, np.nan),
        "px_min_side": np.where(has_px, min_side, np.nan),
    }


def _boxes_np(col) -> np.ndarray:
    """[N, 4] float array of a list<number> column (NaN for null/short boxes)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.full((len(arr), 4), np.nan)
    lens = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    ok = lens == 4
    if ok.any():
        out[ok] = np.asarray(pc.list_flatten(arr.filter(pa.array(ok))).to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4)
    return out


# ---------------------------------------------------------------------------------------------
# The expectations
# ---------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One named expectation: what it asserts, its severity, and the GX expectations that test
    it (``(frame, GX class name, kwargs)``; several GX expectations are AND-ed)."""

    name: str
    severity: str
    description: str
    gx: list[tuple[str, str, dict]] = field(default_factory=list)
    skipped_reason: str | None = None
    observed: dict = field(default_factory=dict)


def _between(frame, column, **kw):
    return (frame, "ExpectColumnValuesToBeBetween", {"column": column, **kw})


def _task_cond(task: str) -> dict:
    return {"row_condition": f'task=="{task}"', "condition_parser": "pandas"}


def build_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    lo, hi = settings.balance_band
    cap = settings.count_cap
    checks = [
        Check("boxes.bbox_1000_in_grid", ERROR,
              "Every mentioned object's bbox_1000 has 4 integer coordinates in [0, 1000]: the "
              "grid Qwen3-VL/InternVL train on; anything else is an impossible target.",
              [_between("objects", k, min_value=0, max_value=1000) for k in ("x1", "y1", "x2", "y2")]
              + [("objects", "ExpectColumnValuesToBeInSet", {"column": "box_len_ok", "value_set": [1.0]})]),
        Check("boxes.bbox_1000_ordered", ERROR,
              "x1 < x2 and y1 < y2 (curation widens collapsed sides, so an inverted or empty "
              "box is a bug).",
              [("objects", "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "x2", "column_B": "x1"}),
               ("objects", "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "y2", "column_B": "y1"})]),
    ]
    if d.have_scene:
        checks.append(Check("boxes.pixel_box_inside_image", ERROR,
                            f"The scene's pixel box lies inside the oriented image (up to {PX_TOLERANCE:g} px "
                            "of annotation rounding) and has positive width and height.",
                            [_between("objects", "px_overflow", max_value=PX_TOLERANCE),
                             _between("objects", "px_min_side", min_value=0, strict_min=True)]))
        checks.append(Check("identity.objects_in_scene", ERROR,
                            "Every object a question mentions exists in the scene table of its image "
                            "(a dangling id means the QA table was built from another scene).",
                            [("objects", "ExpectColumnValuesToBeInSet", {"column": "in_scene", "value_set": [1.0]})]))
        checks.append(Check("identity.boxes_match_scene", ERROR,
                            "The bbox_1000 a question carries equals the scene's box of that object.",
                            [_between("objects", "scene_box_diff", min_value=0, max_value=0)]))
    else:
        checks += [Check(n, ERROR, "", skipped_reason="no scene table given")
                   for n in ("boxes.pixel_box_inside_image", "identity.objects_in_scene", "identity.boxes_match_scene")]
    checks += [
        Check("answers.texts_present", ERROR,
              "Question and answer are non-empty after stripping whitespace.",
              [_between("pairs", "question_chars", min_value=1), _between("pairs", "answer_chars", min_value=1)]),
        Check("answers.in_allowed_set", ERROR,
              "For templates with a closed answer set (allowed_answers), the answer is one of "
              "them; a template the generator does not know has an empty set.",
              [("pairs", "ExpectColumnValuesToBeInSet", {"column": "answer_key", "value_set": d.allowed_answer_keys})]),
        Check("answers.grounding_matches_box", ERROR,
              'Grounding answers parse as {"bbox_2d": [...], "label": ...} (or a list of them '
              "for several instances), name the object's category and give exactly its bbox_1000, "
              "and fact.value holds the same box. Value = largest coordinate difference, -1 when "
              "the answer does not parse or labels/boxes/fact disagree.",
              [_between("pairs", "grounding_box_diff", min_value=0, max_value=0)]),
        Check("answers.count_in_range", ERROR,
              f"Counting answers are a positive integer <= count_cap ({cap}); -1 = not a number.",
              [_between("pairs", "count_answer", min_value=1, max_value=cap)]),
        Check("answers.count_equals_fact", ERROR,
              "The counting answer equals fact.value.",
              [("pairs", "ExpectColumnPairValuesToBeEqual",
                {"column_A": "count_answer", "column_B": "count_fact", "ignore_row_if": "either_value_is_missing"})]),
        Check("identity.qa_id_unique", ERROR,
              "qa_id is not null and unique (it is the key of every export and of incremental "
              "regeneration).",
              [("pairs", "ExpectColumnValuesToNotBeNull", {"column": "qa_id"}),
               ("pairs", "ExpectColumnValuesToBeUnique", {"column": "qa_id"})]),
    ]
    if d.have_images:
        checks.append(Check("identity.image_in_curated", ERROR,
                            "Every image_uri is one of the curated images of the partition.",
                            [("pairs", "ExpectColumnValuesToBeInSet", {"column": "image_in_curated", "value_set": [1.0]})]))
    else:
        checks.append(Check("identity.image_in_curated", ERROR, "", skipped_reason="no images table given"))
    checks.append(Check("volume.pairs_per_image_capped", ERROR,
                        f"No image carries more pairs of one task than the generator's cap "
                        f"(max_grounding_per_image={settings.max_grounding_per_image}, "
                        f"max_pairs_per_image={settings.max_pairs_per_image}): more means duplicates.",
                        [("pairs", "ExpectColumnPairValuesAToBeGreaterThanB",
                          {"column_A": "pairs_cap", "column_B": "pairs_on_image", "or_equal": True})]))
    checks += _balance_checks(d, settings, lo, hi)
    checks += _volume_checks(d, settings)
    return checks


BALANCE_SIGNALS = {
    "is_yes": ("yes_share", "share of 'yes' among yes/no answers", None),
    "first_correct": ("first_mentioned_correct_share",
                      "share of two-object pairs whose answer is the first-mentioned object "
                      "(fact.subject == objects[0])", TWO_OBJECT_TASKS),
    "says_left": ("left_share", "share of 'left' among left/right pairs", LEFT_RIGHT_TASKS),
    "says_closer": ("closer_share", "share of 'closer' among closer/farther pairs", ("near_far",)),
}


def _balance_checks(d: DerivedFrames, settings: QASettings, lo: float, hi: float) -> list[Check]:
    need = balance_min_rows(settings)
    out = []
    for signal, (label, what, tasks) in BALANCE_SIGNALS.items():
        for task in (tasks or d.tasks):
            rows = d.balance_rows.get((signal, task), 0)
            if tasks is None and rows == 0:
                continue  # this task has no yes/no answers at all
            name = f"balance.{label}.{task}"
            desc = (f"{what} in {task} lies in the balance band [{lo:.2f}, {hi:.2f}], so a model "
                    f"cannot learn the answer as a prior.")
            if rows < need:
                out.append(Check(name, ERROR, desc, skipped_reason=f"{rows} rows < {need} needed to judge balance",
                                 observed={"rows": rows}))
                continue
            out.append(Check(name, ERROR, desc,
                             [("pairs", "ExpectColumnMeanToBeBetween",
                               {"column": signal, "min_value": lo, "max_value": hi, **_task_cond(task)})],
                             observed={"rows": rows}))
    for task in d.tasks:
        name = f"balance.category_share.{task}"
        desc = (f"No category holds more than max_category_share={settings.max_category_share:.2f} "
                f"of {task}'s rows (value = that category's share).")
        if task not in d.category_tasks:
            out.append(Check(name, WARN, desc, skipped_reason=f"fewer than {CATEGORY_MIN_ROWS} rows"))
            continue
        out.append(Check(name, WARN, desc,
                         [_between("pairs", "category_share", max_value=settings.max_category_share, **_task_cond(task))]))
    return out


def _volume_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    out = []
    n_img = d.expected_images
    for task in d.tasks:
        floor_frac, severity = VOLUME_FLOORS.get(task, (0.01, WARN))
        name = f"volume.rows.{task}"
        if n_img is None:
            out.append(Check(name, severity, "", skipped_reason="expected_images not given"))
            continue
        cap = per_image_cap(task, settings) * n_img
        floor = math.ceil(floor_frac * n_img) if n_img >= VOLUME_MIN_IMAGES else 0
        desc = (f"{task} has between {floor} ({floor_frac:g} per image, from {n_img} images) and "
                f"{cap} (per-image cap x images) rows; an empty task on a full shard is a silent failure.")
        out.append(Check(name, severity, desc,
                         [("volume", "ExpectColumnValuesToBeBetween",
                           {"column": "rows", "min_value": floor, "max_value": cap, **_task_cond(task)}),
                          ("volume", "ExpectColumnValuesToBeBetween",
                           {"column": "images_with_pairs", "max_value": n_img, **_task_cond(task)})],
                         observed={"expected_images": n_img}))
    return out


def _default_allowed() -> AllowedAnswers:
    from sf_platform.core.qa.templates import allowed_answers

    return allowed_answers


def validate_qa(
    qa: pa.Table,
    settings: QASettings,
    scene: pa.Table | None = None,
    images: pa.Table | None = None,
    expected_images: int | None = None,
    data_docs_dir: str | None = None,
    *,
    name: str = "qa",
    tasks: Iterable[str] | None = None,
    allowed_answers: AllowedAnswers | None = None,
) -> ValidationReport:
    """Validate one QA table (one task's partition, or several tasks, or a whole release).

    ``tasks`` names the tasks the table is meant to hold (so an empty one is caught by the
    volume floor; default: those present).  ``allowed_answers`` defaults to
    :func:`sf_platform.core.qa.templates.allowed_answers`.  With ``data_docs_dir`` GX Data Docs
    are built there and ``report.data_docs_index`` points at their index.html.
    """
    import time

    from sf_platform.quality.gx_runner import run_checks

    missing = [f.name for f in (("qa_id", "task", "question", "answer", "template_id", "objects", "fact", "image_id", "image_uri") and [])]
    del missing
    need = ("qa_id", "task", "question", "answer", "template_id", "objects", "fact", "image_id", "image_uri")
    absent = [c for c in need if c not in qa.column_names]
    if absent:
        raise ValueError(f"QA table {name!r} lacks column(s) {absent}; build it with schemas.QA")
    t0 = time.perf_counter()
    derived = derive(qa, settings, allowed_answers or _default_allowed(), scene, images, expected_images, tasks)
    checks = build_checks(derived, settings)
    outcomes, docs_index = run_checks(name, derived, checks, qa, data_docs_dir)
    passed = not any(o.severity == ERROR and not o.success for o in outcomes)
    return ValidationReport(table=name, passed=passed, outcomes=outcomes, rows=qa.num_rows,
                            seconds=time.perf_counter() - t0, data_docs_index=docs_index)
