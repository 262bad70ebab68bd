"""The write-audit-publish gate of a QA table: named expectations, each ERROR or WARN.

A QA table is validated in memory, before it is written (DESIGN.md: a reader never sees an
unchecked table).  The work splits in two:

- here, pure pyarrow/numpy turns the nested QA table into flat *derived* columns (box
  coordinates exploded one row per mentioned object, ``is_yes``, ``first_correct``,
  ``answer_key``, ``count_answer`` ...), vectorised (no Python loop per row);
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

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import pyarrow as pa

from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.derived import (
    SIGNAL_TASKS,
    AllowedAnswers,
    DerivedFrames,
    derive,
    per_image_cap,
)
from sf_platform.quality.gx_runner import run_checks
from sf_platform.quality.types import ERROR, WARN, Check, ExpectationOutcome

__all__ = ["ERROR", "WARN", "Check", "ExpectationOutcome", "ValidationReport", "balance_min_rows", "validate_qa"]

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


@dataclass
class ValidationReport:
    table: str
    passed: bool  # no ERROR outcome failed
    outcomes: list[ExpectationOutcome]
    rows: int = 0
    seconds: float = 0.0
    data_docs_index: str | None = None  # local path of the built Data Docs index.html
    # The additive figures behind the release-wide checks (rows, balance signals, categories,
    # images with pairs per task), which a streaming audit sums over partitions.
    derived: DerivedFrames | None = field(default=None, repr=False)

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
            (f"**{self.table}**: {status}, {self.rows:,} rows, {len(self.outcomes)} expectations "
             f"({len(self.failures())} failed, {sum(o.skipped for o in self.outcomes)} skipped)"),
            "",
            "| expectation | severity | result | unexpected | rows |",
            "|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            res = "skipped" if o.skipped else ("ok" if o.success else "**failed**")
            lines.append(f"| {o.name} | {o.severity} | {res} | {o.unexpected_count:,} | {o.element_count:,} |")
        return "\n".join(lines)


def is_release_wide(check_name: str) -> bool:
    """Checks judged on a whole task's totals (balance shares, category share, volume), which a
    streaming audit evaluates once from summed per-partition figures; every other check is a
    per-row check whose outcome over a release is the sum of its outcomes over partitions."""
    # The conditional-count value share is capped per shard by the generator and checked per
    # partition (a WARN): its per-row frame has no release-wide one-row form.
    if check_name.startswith("balance.count_value_share."):
        return False
    return check_name.startswith(("balance.", "volume.rows."))


def balance_min_rows(settings: QASettings) -> int:
    """Rows of one balance signal needed before its band is enforced (module doc)."""
    if settings.balance_tolerance <= 0:
        return 2**62
    return math.ceil((BALANCE_SIGMAS * 0.5 / settings.balance_tolerance) ** 2)



# ---------------------------------------------------------------------------------------------
# The expectations
# ---------------------------------------------------------------------------------------------


def _between(frame, column, **kw):
    return (frame, "ExpectColumnValuesToBeBetween", {"column": column, **kw})


def _in_set(frame, column, values):
    return (frame, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)})


def _skipped(name: str, severity: str, description: str, reason: str, **observed) -> Check:
    return Check(name, severity, description, skipped_reason=reason, observed=observed)


def build_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    """Every named expectation over the derived frames of ``d`` (see the module doc for the
    severities); checks that cannot be judged are kept, marked skipped, so the report and the
    Dagster UI show what was *not* verified."""
    checks = _box_checks(d) + _answer_checks(d, settings) + _identity_checks(d)
    checks += _balance_checks(d, settings) + _volume_checks(d, settings)
    return checks


def _box_checks(d: DerivedFrames) -> list[Check]:
    px_desc = (f"The scene's pixel box lies inside the oriented image (up to {PX_TOLERANCE:g} px of "
               "annotation rounding) and has positive width and height.")
    checks = [
        Check("boxes.bbox_1000_in_grid", ERROR,
              "Every mentioned object's bbox_1000 has 4 coordinates in [0, 1000]: the grid "
              "Qwen3-VL/InternVL train on; anything else is an impossible target (-1 = missing box).",
              [_between("objects", k, min_value=0, max_value=1000) for k in ("x1", "y1", "x2", "y2")]),
        Check("boxes.bbox_1000_ordered", ERROR,
              "x1 < x2 and y1 < y2 (curation widens collapsed sides, so an inverted or empty box is a bug).",
              [("objects", "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "x2", "column_B": "x1"}),
               ("objects", "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "y2", "column_B": "y1"})]),
    ]
    if d.have_scene:
        checks.append(Check("boxes.pixel_box_inside_image", ERROR, px_desc,
                            [_between("objects", "px_overflow", max_value=PX_TOLERANCE),
                             _between("objects", "px_min_side", min_value=0, strict_min=True)]))
    else:
        checks.append(_skipped("boxes.pixel_box_inside_image", ERROR, px_desc, "no scene table given"))
    return checks


def _answer_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    cap = settings.count_cap
    checks = [
        Check("answers.texts_present", ERROR,
              "Question and answer are non-empty after stripping whitespace.",
              [_between("pairs", "question_bytes", min_value=1), _between("pairs", "answer_bytes", min_value=1)]),
        Check("answers.in_allowed_set", ERROR,
              "For templates with a closed answer set (allowed_answers), the answer is one of them "
              "(value = '<task>/<template> -> <answer>'); a template the generator does not know "
              "has an empty set.",
              [_in_set("closed_answers", "answer_code", d.allowed_answer_codes)]),
    ]
    g_desc = ('Grounding answers parse as {"bbox_2d": [...], "label": ...} (or a list of them for '
              "several instances), name the object's category and give exactly its bbox_1000, and "
              "fact.value holds the same box. Value = largest coordinate difference; -1 when the "
              "answer does not parse or labels/boxes/fact disagree.")
    if "task.grounding" in d.frames:
        checks.append(Check("answers.grounding_matches_box", ERROR, g_desc,
                            [_between("task.grounding", "grounding_box_diff", min_value=0, max_value=0)]))
    else:
        checks.append(_skipped("answers.grounding_matches_box", ERROR, g_desc, "no grounding rows"))
    c_desc = f"Counting answers are a positive integer <= count_cap ({cap}) equal to fact.value; -1 = not a number."
    if "task.counting" in d.frames:
        checks.append(Check("answers.count_in_range", ERROR, c_desc,
                            [_between("task.counting", "count_answer", min_value=1, max_value=cap)]))
        checks.append(Check("answers.count_equals_fact", ERROR, "The counting answer equals fact.value.",
                            [("task.counting", "ExpectColumnPairValuesToBeEqual",
                              {"column_A": "count_answer", "column_B": "count_fact"})]))
    else:
        checks.append(_skipped("answers.count_in_range", ERROR, c_desc, "no counting rows"))
        checks.append(_skipped("answers.count_equals_fact", ERROR, "The counting answer equals fact.value.", "no counting rows"))
    from sf_platform.quality.count_checks import conditional_count_checks  # imports this module

    return checks + conditional_count_checks(d, settings)


def _identity_checks(d: DerivedFrames) -> list[Check]:
    checks = [Check("identity.qa_id_unique", ERROR,
                    "qa_id is not null and unique (it keys every export and incremental regeneration).",
                    [("pairs", "ExpectColumnValuesToNotBeNull", {"column": "qa_id_code"}),
                     ("pairs", "ExpectColumnValuesToBeUnique", {"column": "qa_id_code"})])]
    obj_desc = ("Every object a question mentions exists in the scene table of its image (a dangling "
                "id means the QA table was built from another scene).")
    box_desc = "The bbox_1000 a question carries equals the scene's box of that object (value = largest difference)."
    if d.have_scene:
        checks.append(Check("identity.objects_in_scene", ERROR, obj_desc, [_in_set("objects", "in_scene", [1.0])]))
        checks.append(Check("identity.boxes_match_scene", ERROR, box_desc,
                            [_between("objects", "scene_box_diff", min_value=0, max_value=0)]))
    else:
        checks.append(_skipped("identity.objects_in_scene", ERROR, obj_desc, "no scene table given"))
        checks.append(_skipped("identity.boxes_match_scene", ERROR, box_desc, "no scene table given"))
    img_desc = "Every image_uri is one of the curated images."
    if d.have_images:
        checks.append(Check("identity.image_in_curated", ERROR, img_desc, [_in_set("pairs", "image_in_curated", [1.0])]))
    else:
        checks.append(_skipped("identity.image_in_curated", ERROR, img_desc, "no images table given"))
    return checks


BALANCE_LABELS = {
    "is_yes": ("yes_share", "share of 'yes' among yes/no answers"),
    "first_correct": ("first_mentioned_correct_share",
                      "share of two-object pairs whose answer is the first-mentioned object (fact.subject == objects[0])"),
    "says_left": ("left_share", "share of 'left' among left/right pairs"),
    "says_closer": ("closer_share", "share of 'closer' among closer/farther pairs"),
}


def _balance_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    lo, hi = settings.balance_band
    need = balance_min_rows(settings)
    out = []
    for signal, tasks in SIGNAL_TASKS.items():
        label, what = BALANCE_LABELS[signal]
        for task in tasks or d.tasks:
            rows = d.signal_rows.get((signal, task), 0)
            if tasks is None and rows == 0:
                continue  # this task has no yes/no answers at all: nothing to balance
            name = f"balance.{label}.{task}"
            desc = f"The {what} in {task} lies in the balance band [{lo:.2f}, {hi:.2f}], so the answer cannot be guessed from a prior."
            if rows < need:
                out.append(_skipped(name, ERROR, desc, f"{rows} rows < {need} needed to judge balance", rows=rows))
                continue
            out.append(Check(name, ERROR, desc,
                             [_between("balance", f"{signal}/{task}", min_value=lo, max_value=hi)],
                             observed={"rows": rows, "share": round(d.signal_share[(signal, task)], 4)}))
    for task in d.tasks:
        name = f"balance.category_share.{task}"
        desc = (f"No category holds more than max_category_share={settings.max_category_share:.2f} of "
                f"{task}'s rows (value = that category's share).")
        top = d.top_category.get(task)
        observed = {"top_category": top[0], "top_share": round(top[1], 4)} if top else {}
        rows = d.task_rows.get(task, 0)
        if rows < CATEGORY_MIN_ROWS:
            out.append(_skipped(name, WARN, desc, f"{rows} rows < {CATEGORY_MIN_ROWS}", **observed))
            continue
        out.append(Check(name, WARN, desc,
                         [_between(f"task.{task}", "category_share", max_value=settings.max_category_share)],
                         observed=observed))
    return out


def _volume_checks(d: DerivedFrames, settings: QASettings) -> list[Check]:
    out = [Check("volume.pairs_per_image_capped", ERROR,
                 f"No image carries more pairs of one task than the generator's cap (max_grounding_per_image="
                 f"{settings.max_grounding_per_image}, max_pairs_per_image={settings.max_pairs_per_image}): "
                 "more means duplicated pairs.",
                 [("pairs", "ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "pairs_cap", "column_B": "pairs_on_image", "or_equal": True})])]
    n_img = d.expected_images
    for task in d.tasks:
        floor_frac, severity = VOLUME_FLOORS.get(task, (0.01, WARN))
        name = f"volume.rows.{task}"
        if n_img is None:
            out.append(_skipped(name, severity, f"{task} rows within bounds set by the number of images.",
                                "expected_images not given", rows=d.task_rows.get(task, 0)))
            continue
        cap = per_image_cap(task, settings) * n_img
        floor = math.ceil(floor_frac * n_img) if n_img >= VOLUME_MIN_IMAGES else 0
        desc = (f"{task} has between {floor} ({floor_frac:g} per image of {n_img}) and {cap} (per-image cap x "
                f"images) rows, on at most {n_img} images; an empty task on a full shard is a silent failure.")
        out.append(Check(name, severity, desc,
                         [_between("volume", f"rows/{task}", min_value=floor, max_value=cap),
                          _between("volume", f"images_with_pairs/{task}", max_value=n_img)],
                         observed={"rows": d.task_rows.get(task, 0), "expected_images": n_img}))
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
    only: Callable[[str], bool] | None = None,
) -> ValidationReport:
    """Validate one QA table (one task's partition, or several tasks, or a whole release).

    ``tasks`` names the tasks the table is meant to hold (so an empty one is caught by the
    volume floor; default: those present).  ``allowed_answers`` defaults to
    :func:`sf_platform.core.qa.templates.allowed_answers`.  With ``data_docs_dir`` GX Data Docs
    are built there and ``report.data_docs_index`` points at their index.html.  ``only`` keeps
    the checks whose name it accepts (a streaming audit runs the per-row ones per partition).
    """
    need = ("qa_id", "task", "question", "answer", "template_id", "objects", "fact", "image_id", "image_uri")
    absent = [c for c in need if c not in qa.column_names]
    if absent:
        raise ValueError(f"QA table {name!r} lacks column(s) {absent}; build it with schemas.QA")
    t0 = time.perf_counter()
    derived = derive(qa, settings, allowed_answers or _default_allowed(), scene, images, expected_images, tasks)
    checks = [c for c in build_checks(derived, settings) if only is None or only(c.name)]
    outcomes, docs_index = run_checks(name, derived, checks, qa, data_docs_dir)
    passed = not any(o.severity == ERROR and not o.success for o in outcomes)
    return ValidationReport(table=name, passed=passed, outcomes=outcomes, rows=qa.num_rows,
                            seconds=time.perf_counter() - t0, data_docs_index=docs_index,
                            derived=replace(derived, frames={}))  # figures only, no frames
