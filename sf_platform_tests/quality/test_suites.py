"""Each named expectation fails on a table with exactly that defect and passes on a good one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.suites import ERROR, WARN, balance_min_rows, validate_qa
from sf_platform.testing.qa_tables import allowed_answers, first_row, good_tables, replace_cell

# Tolerance 0.2 makes balance judgeable from (4 * 0.5 / 0.2)^2 = 100 rows, so small tables
# exercise the balance expectations; 60 images x 4 pairs = 240 rows per task also clears the
# category-share minimum.
SETTINGS = QASettings(balance_tolerance=0.2)
N_IMAGES, PER_IMAGE = 60, 4


@pytest.fixture(scope="module")
def good():
    return good_tables(N_IMAGES, PER_IMAGE)


def _validate(qa, scene, images, settings=SETTINGS, expected_images=N_IMAGES, **kw):
    return validate_qa(qa, settings, scene=scene, images=images, expected_images=expected_images,
                       allowed_answers=allowed_answers, **kw)


def _only(qa, *tasks):
    return qa.filter(pc.is_in(qa.column("task"), value_set=pa.array(list(tasks))))


def _set_object(qa, row, i, **changes):
    objs = qa.column("objects").to_pylist()[row]
    objs[i] = {**objs[i], **changes}
    return replace_cell(qa, "objects", row, objs)


def _set_fact(qa, row, **changes):
    fact = qa.column("fact").to_pylist()[row]
    return replace_cell(qa, "fact", row, {**fact, **changes})


def _map_column(qa, column, fn, task):
    """Apply ``fn(row_dict) -> new value`` to ``column`` on every row of ``task``."""
    rows = qa.to_pylist()
    vals = [fn(r) if r["task"] == task else r[column] for r in rows]
    idx = qa.column_names.index(column)
    return qa.set_column(idx, column, pa.array(vals, type=qa.schema.field(column).type))


# --- one defect per case: (expectation that must fail, tasks kept, mutate(qa, scene, images)) ----


def _grid(qa, scene, images):
    r = first_row(qa, "referring")
    return _set_object(qa, r, 0, bbox_1000=[-5, 10, 100, 200]), scene, images, 1


def _inverted(qa, scene, images):
    r = first_row(qa, "referring")
    return _set_object(qa, r, 0, bbox_1000=[300, 10, 200, 200]), scene, images, 1


def _pixel_outside(qa, scene, images):
    r = first_row(qa, "referring")
    oid = qa.column("objects").to_pylist()[r][0]["object_id"]
    s = scene.column("object_id").to_pylist().index(oid)
    px = scene.column("bbox_px").to_pylist()[s]
    return qa, replace_cell(scene, "bbox_px", s, [px[0], px[1], 850.0, px[3]]), images, None


def _empty_answer(qa, scene, images):
    return replace_cell(qa, "answer", first_row(qa, "referring"), "   "), scene, images, 1


def _not_allowed(qa, scene, images):
    return replace_cell(qa, "answer", first_row(qa, "left_right"), "Maybe."), scene, images, 1


def _unknown_template(qa, scene, images):
    return replace_cell(qa, "template_id", first_row(qa, "left_right"), "left_right.new"), scene, images, 1


def _grounding_off(qa, scene, images):
    r = first_row(qa, "grounding")
    box = qa.column("objects").to_pylist()[r][0]["bbox_1000"]
    ans = json.dumps({"bbox_2d": [box[0] + 3, box[1], box[2], box[3]], "label": "chair"})
    return replace_cell(qa, "answer", r, ans), scene, images, 1


def _grounding_garbage(qa, scene, images):
    r = first_row(qa, "grounding")
    return replace_cell(qa, "answer", r, "It is on the left."), scene, images, 1


def _grounding_wrong_label(qa, scene, images):
    r = first_row(qa, "grounding")
    box = qa.column("objects").to_pylist()[r][0]["bbox_1000"]
    return replace_cell(qa, "answer", r, json.dumps({"bbox_2d": box, "label": "giraffe"})), scene, images, 1


def _count_over_cap(qa, scene, images):
    r = first_row(qa, "counting")
    qa = _set_fact(replace_cell(qa, "answer", r, "11"), r, value="11")
    return qa, scene, images, 1


def _count_vs_fact(qa, scene, images):
    r = first_row(qa, "counting")
    return _set_fact(qa, r, value="7"), scene, images, 1


def _dup_qa_id(qa, scene, images):
    other = qa.column("qa_id")[1].as_py()
    return replace_cell(qa, "qa_id", 0, other), scene, images, 2


def _null_qa_id(qa, scene, images):
    return replace_cell(qa, "qa_id", 0, None), scene, images, 1


def _dangling_object(qa, scene, images):
    return _set_object(qa, first_row(qa, "referring"), 0, object_id="no-such-object"), scene, images, 1


def _box_differs(qa, scene, images):
    r = first_row(qa, "referring")
    box = qa.column("objects").to_pylist()[r][0]["bbox_1000"]
    return _set_object(qa, r, 0, bbox_1000=[box[0] + 1, box[1], box[2], box[3]]), scene, images, 1


def _unknown_image(qa, scene, images):
    return replace_cell(qa, "image_uri", first_row(qa, "referring"), "file:///elsewhere/x.jpg"), scene, images, 1


def _yes_skew(qa, scene, images):
    return _map_column(qa, "answer", lambda r: "Yes.", "left_right"), scene, images, None


def _first_skew(qa, scene, images):
    return _map_column(qa, "fact", lambda r: {**r["fact"], "subject": r["objects"][0]["object_id"]}, "near_far"), scene, images, None


def _left_skew(qa, scene, images):
    return _map_column(qa, "answer", lambda r: "On their left.", "perspective"), scene, images, None


def _closer_skew(qa, scene, images):
    return _map_column(qa, "question", lambda r: r["question"].replace("farther from", "closer to"), "near_far"), scene, images, None


def _one_category(qa, scene, images):
    return _map_column(qa, "objects", lambda r: [{**o, "category": "chair"} for o in r["objects"]], "referring"), scene, images, None


CASES = [
    ("boxes.bbox_1000_in_grid", ("referring",), _grid),
    ("boxes.bbox_1000_ordered", ("referring",), _inverted),
    ("boxes.pixel_box_inside_image", ("referring",), _pixel_outside),
    ("answers.texts_present", ("referring",), _empty_answer),
    ("answers.in_allowed_set", ("left_right",), _not_allowed),
    ("answers.in_allowed_set", ("left_right",), _unknown_template),
    ("answers.grounding_matches_box", ("grounding",), _grounding_off),
    ("answers.grounding_matches_box", ("grounding",), _grounding_garbage),
    ("answers.grounding_matches_box", ("grounding",), _grounding_wrong_label),
    ("answers.count_in_range", ("counting",), _count_over_cap),
    ("answers.count_equals_fact", ("counting",), _count_vs_fact),
    ("identity.qa_id_unique", ("referring",), _dup_qa_id),
    ("identity.qa_id_unique", ("referring",), _null_qa_id),
    ("identity.objects_in_scene", ("referring",), _dangling_object),
    ("identity.boxes_match_scene", ("referring",), _box_differs),
    ("identity.image_in_curated", ("referring",), _unknown_image),
    ("balance.yes_share.left_right", ("left_right",), _yes_skew),
    ("balance.first_mentioned_correct_share.near_far", ("near_far",), _first_skew),
    ("balance.left_share.perspective", ("perspective",), _left_skew),
    ("balance.closer_share.near_far", ("near_far",), _closer_skew),
    ("balance.category_share.referring", ("referring",), _one_category),
]


@pytest.mark.parametrize("name,tasks,mutate", CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_expectation_fails_on_its_defect(good, name, tasks, mutate):
    qa, scene, images = good
    qa = _only(qa, *tasks)
    clean = {o.name: o for o in _validate(qa, scene, images).outcomes}
    assert clean[name].success and not clean[name].skipped, clean[name]

    bad_qa, bad_scene, bad_images, n_bad = mutate(qa, scene, images)
    report = _validate(bad_qa, bad_scene, bad_images)
    outcome = {o.name: o for o in report.outcomes}[name]
    assert not outcome.success, outcome
    assert outcome in report.failures()
    if n_bad is not None:
        assert outcome.unexpected_count == n_bad
        assert outcome.examples, "a failed row expectation shows offending rows"
        assert {"qa_id", "task", "question", "answer"} <= set(outcome.examples[0])
    assert report.passed is (outcome.severity == WARN and all(o.severity == WARN for o in report.failures()))


def test_good_table_passes_every_expectation(good):
    qa, scene, images = good
    report = _validate(qa, scene, images, name="all_tasks")
    assert report.passed, report.summary_markdown()
    assert not report.failures()
    assert not any(o.skipped for o in report.outcomes), [o.name for o in report.outcomes if o.skipped]
    # every expectation was evaluated by GX and reports the rows it looked at
    assert all(o.element_count > 0 for o in report.outcomes), [o.name for o in report.outcomes if not o.element_count]
    names = {o.name for o in report.outcomes}
    for group in ("boxes.", "answers.", "balance.", "identity.", "volume."):
        assert any(n.startswith(group) for n in names), group
    balance = {o.name: o for o in report.outcomes if o.name.startswith("balance.yes_share")}
    assert balance["balance.yes_share.left_right"].observed["share"] == pytest.approx(0.5)


def test_balance_below_min_rows_is_skipped_not_failed(good):
    qa, scene, images = good
    qa = _map_column(_only(qa, "left_right"), "answer", lambda r: "Yes.", "left_right")
    report = _validate(qa, scene, images, settings=QASettings())  # default band needs 1,600 rows
    o = {o.name: o for o in report.outcomes}["balance.yes_share.left_right"]
    assert o.skipped and o.success
    assert str(balance_min_rows(QASettings())) in o.observed["skipped"]
    assert balance_min_rows(QASettings()) == 1600


def test_pairs_per_image_cap(good):
    qa, scene, images = good
    report = _validate(_only(qa, "referring"), scene, images, settings=QASettings(balance_tolerance=0.2, max_pairs_per_image=3))
    o = {o.name: o for o in report.outcomes}["volume.pairs_per_image_capped"]
    assert not o.success and o.severity == ERROR
    assert o.unexpected_count == _only(qa, "referring").num_rows  # every image carries 4 > 3
    assert not report.passed


def test_volume_floor_catches_an_empty_task(good):
    qa, scene, images = good
    report = _validate(_only(qa, "referring"), scene, images, tasks=["referring", "grounding"])
    o = {o.name: o for o in report.outcomes}["volume.rows.grounding"]
    assert not o.success and o.severity == ERROR and not report.passed
    assert o.examples[0]["task"] == "grounding" and o.examples[0]["rows"] == 0


def test_volume_bounds_relative_to_images(good):
    qa, scene, images = good
    qa = _only(qa, "referring")
    too_few_images = _validate(qa, scene, images, expected_images=10)  # 240 rows > 8 x 10, 60 images > 10
    assert not {o.name: o for o in too_few_images.outcomes}["volume.rows.referring"].success
    too_many_images = _validate(qa, scene, images, expected_images=5000)  # floor 0.1 x 5000 = 500 > 240
    assert not {o.name: o for o in too_many_images.outcomes}["volume.rows.referring"].success
    assert _validate(qa, scene, images, expected_images=N_IMAGES).passed


def test_without_scene_and_images_those_checks_are_skipped(good):
    qa, _, _ = good
    report = validate_qa(_only(qa, "referring"), SETTINGS, allowed_answers=allowed_answers)
    skipped = {o.name for o in report.outcomes if o.skipped}
    assert {"boxes.pixel_box_inside_image", "identity.objects_in_scene", "identity.image_in_curated",
            "volume.rows.referring"} <= skipped
    assert report.passed


def test_multi_instance_grounding_answer(good):
    qa, scene, images = good
    g = _only(qa, "grounding").slice(0, 1)
    row = g.to_pylist()[0]
    sc = scene.to_pylist()
    # a second chair of the same image, by its scene box
    same_image = [o for o in sc if o["image_id"] == row["image_id"] and o["object_id"] != row["objects"][0]["object_id"]]
    other = {"object_id": same_image[0]["object_id"], "category": same_image[0]["category"], "bbox_1000": same_image[0]["bbox_1000"]}
    objs = [row["objects"][0], other]
    answer = json.dumps([{"bbox_2d": o["bbox_1000"], "label": o["category"]} for o in reversed(objs)])
    value = json.dumps([o["bbox_1000"] for o in objs])
    g = replace_cell(replace_cell(replace_cell(g, "objects", 0, objs), "answer", 0, answer), "fact", 0, {**row["fact"], "value": value})
    ok = {o.name: o for o in _validate(g, scene, images, expected_images=None).outcomes}["answers.grounding_matches_box"]
    assert ok.success and ok.element_count == 1
    wrong = json.dumps([{"bbox_2d": objs[0]["bbox_1000"], "label": objs[0]["category"]}])  # one box missing
    bad = {o.name: o for o in _validate(replace_cell(g, "answer", 0, wrong), scene, images, expected_images=None).outcomes}
    assert not bad["answers.grounding_matches_box"].success


def test_report_metadata_and_markdown_are_plain(good):
    qa, scene, images = good
    report = _validate(*mutate_first(qa, scene, images))
    meta = report.to_metadata()
    json.dumps(meta)  # JSON-able
    assert meta["passed"] is False and meta["failed_error"] >= 1
    assert all(isinstance(v, (int, float, bool)) for v in meta.values())
    md = report.summary_markdown()
    assert "boxes.bbox_1000_in_grid" in md and "**failed**" in md


def mutate_first(qa, scene, images):
    bad, scene, images, _ = _grid(_only(qa, "referring"), scene, images)
    return bad, scene, images


def test_rejects_a_table_without_qa_columns():
    with pytest.raises(ValueError, match="lacks column"):
        validate_qa(pa.table({"qa_id": ["a"]}), SETTINGS, allowed_answers=allowed_answers)


def test_data_docs_are_built_offline(good, tmp_path):
    qa, scene, images = good
    report = _validate(_only(qa, "counting"), scene, images, data_docs_dir=str(tmp_path / "docs"), name="counting")
    assert report.data_docs_index and os.path.exists(report.data_docs_index)
    pages = {o.docs_page for o in report.outcomes if not o.skipped}
    assert None not in pages
    for page in pages:
        text = (tmp_path / "docs" / page).read_text()
        assert "<script" not in text and "https://" not in text.split("</head>")[0]
        assert "<table" in text and "counting." in text  # the suite's rendered results, readable without scripts
    counting_page = {o.name: o for o in report.outcomes}["answers.count_in_range"].docs_page
    assert "count_answer" in (tmp_path / "docs" / counting_page).read_text()


def test_great_expectations_is_not_imported_until_validation():
    code = ("import sys; import sf_platform.quality.suites, sf_platform.quality.report, sf_platform.quality.derived; "
            "print('great_expectations' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.split() == ["False", "False"]


def test_generated_qa_passes_the_gate():
    """The real generators' output (with the real templates' allowed_answers) passes every
    ERROR expectation, per task as a partition gate would run it."""
    from sf_platform.core.qa.generate import generate_tasks
    from sf_platform_tests.core.qa.scenes import random_scene

    settings = QASettings()
    scene = random_scene(150, seed=3)
    n_images = len(pc.unique(scene.column("image_id")))
    for task, table in generate_tasks(scene, settings).items():
        report = validate_qa(table, settings, scene=scene, expected_images=n_images, tasks=[task], name=task)
        assert table.num_rows > 0
        assert report.passed and not report.failures(), report.summary_markdown()


def test_counted_point_only_instances_pass_but_boxless_relations_fail():
    """PixMo points the detector did not box are counted instances without a box: a counting
    row may list them (the scene agrees they have none); any other task may not."""
    import pyarrow as pa

    from sf_platform.core.qa.generate import generate_task
    from sf_platform.core.qa.settings import QASettings
    from sf_platform_tests.core.qa.scenes import obj, scene

    pts = [obj(f"p{i}", "Chair", None, points=[{"x": 50.0 + 100 * i, "y": 200.0}], provenance="points")
           for i in range(3)]
    sc = scene({"img1": pts})
    qa = generate_task("counting", sc, QASettings())
    assert qa.num_rows and any(o["bbox_1000"] is None for r in qa.to_pylist() for o in r["objects"])
    assert validate_qa(qa, QASettings(), scene=sc).passed
    relabelled = qa.set_column(qa.schema.get_field_index("task"), "task", pa.array(["left_right"] * qa.num_rows))
    report = validate_qa(relabelled, QASettings(), scene=sc)
    assert "boxes.bbox_1000_in_grid" in {o.name for o in report.failures()}
