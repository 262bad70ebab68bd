"""Flat, derived columns of a QA table: what the expectation suites actually look at.

The QA table is nested (a list of mentioned objects, a fact struct, free-text answers); Great
Expectations checks flat columns.  Everything here is vectorised pyarrow/numpy (regexes run in
Arrow's RE2, never a Python loop over rows, except the rare grounding answer that is not in
the one-object JSON form); bench/validate.py measures it.  What keeps it fast: strings are hashed once per column and everything
downstream works on integer codes (tasks x templates x answers, image codes); per-scene-object
figures are computed once and gathered by position; text is only read where it can change the
answer (the first byte of an answer before a yes/no regex, the question only where the answer
says neither side, the edges of a text before stripping it); a task's rows are zero-copy
slices when they are one run; frames wrap the numpy columns without copying them.

The result is several *narrow* pandas frames, each holding ``row`` (the position in the QA
table, used to show offending rows) and only the columns of one concern, restricted to the
rows the concern applies to (``task.counting`` holds counting rows only).  Narrow frames matter:
GX's pandas engine copies the frame it filters, so one wide frame costs several times more per
expectation than a frame of two columns.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.category_names import display_names
from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.answers import (
    UNPARSEABLE,
    AllowedAnswers,
    answer_codes,
    grounding_box_diff,
    parse_count,
    polarity,
    yes_share_signal,
)
from sf_platform.quality.columns import (
    _arr,
    _as_numpy,
    _box_columns,
    _boxes_np,
    _encode,
    _fill,
    _frame,
    _per_task_image_counts,
    _take,
    _take_or_null,
    stripped_bytes,
)

TWO_OBJECT_TASKS = ("near_far", "left_right")
COUNT_TASKS = ("counting", "conditional_counting")  # fact.subject is the counted category
LEFT_RIGHT_TASKS = ("left_right", "perspective")
# Balance signals: column -> (tasks it applies to, None = every task that has such answers).
SIGNAL_TASKS: dict[str, tuple[str, ...] | None] = {
    "is_yes": None,
    "first_correct": TWO_OBJECT_TASKS,
    "says_left": LEFT_RIGHT_TASKS,
    "says_closer": ("near_far",),
}



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
    count_value_shares: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> {answer: share}
    category_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> category -> rows
    have_scene: bool = False
    have_images: bool = False
    expected_images: int | None = None
    # (frame, column) of a balance/volume figure -> the record a reader sees when it fails
    summary: dict[tuple[str, str], dict] = field(default_factory=dict)


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
    pos = _as_numpy(_fill(pc.index_in(key(image_ids, object_ids), value_set=scene_keys), -1), np.int64)
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
        w, h = _as_numpy(scene.column("width")), _as_numpy(scene.column("height"))
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
        hit = _as_numpy(_fill(pc.equal(_take(ids, multi), _take(fact_subject, parent[multi])), False), bool)
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
    obj_count = _as_numpy(_fill(pc.list_value_length(objs), 0), np.int64) if n else np.zeros(0, np.int64)
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
        curated = _as_numpy(_fill(pc.is_in(img_names, value_set=_arr(pc.unique(images.column("image_uri")))), False))
        in_curated = curated[img_codes] if n else np.zeros(0)
        if uri.null_count:
            in_curated[_as_numpy(uri.is_null(), bool)] = 0.0
        pairs["image_in_curated"] = in_curated
    frames["pairs"] = _frame(pairs)

    # Closed-set answers become integer codes into one vocabulary (allowed keys first, then
    # whatever else was seen): GX checks ints against the allowed codes much faster than strings.
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
    # in Python looking for Decimals, for a number numpy computes in one vectorised pass).
    first_id = _take_or_null(ids, first)
    subject_obj = _subject_objects(ids, parent, obj_count, fact_subject, first)
    balance: list[tuple] = []
    for t, r in rows_of.items():
        if not len(r):
            continue
        ans_t, q_t = _take(answer, r), _take(question, r)
        signals = {"is_yes": yes_share_signal(ans_t)}
        if t in TWO_OBJECT_TASKS:
            same = _as_numpy(_fill(pc.equal(_take(fact_subject, r), _take(first_id, r)), False))
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
        category = _take(fact_subject, r) if t in COUNT_TASKS else _take_or_null(cats, subject_obj[r])
        cat_codes, cat_names = _encode(_fill(category, "<none>"))
        sizes = np.bincount(cat_codes, minlength=len(cat_names))
        cols["category_share"] = sizes[cat_codes] / len(r)
        top = int(np.argmax(sizes))
        d.top_category[t] = (cat_names[top].as_py(), float(sizes[top] / len(r)))
        d.category_counts[t] = dict(zip(cat_names.to_pylist(), sizes.tolist()))
        if t == "grounding":
            cols["grounding_box_diff"] = grounding_box_diff(ans_t, _take(fact_value, r), obj_start[r], obj_count[r],
                                                           display_names(cats), coords)
        if t == "counting":
            cols["count_answer"] = parse_count(ans_t)
            cols["count_fact"] = parse_count(_take(fact_value, r))
        if t == "conditional_counting":
            from sf_platform.quality.count_checks import count_columns

            more, d.count_value_shares[t] = count_columns(ans_t, _take(fact_value, r))
            cols.update(more)
        frames[f"task.{t}"] = _frame(cols)

    # balance and volume: one row, one column per figure ("<signal>/<task>", "rows/<task>"), so
    # each expectation names its figure directly instead of filtering a long frame with a GX
    # row_condition (a pandas query per metric, whatever the number of rows it keeps)
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
