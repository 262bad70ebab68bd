"""conditional_counting: every instance clears the margin, zero only when clearly so, balance."""

from __future__ import annotations

import collections

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from sf_platform import synthetic
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.core.qa.count_templates import CONDITIONS
from sf_platform.core.qa.generate import TASK_CODE_VERSIONS, generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.suites import validate_qa
from sf_platform_tests.core.qa.checks import check_table
from sf_platform_tests.core.qa.conditional_oracle import check_conditional_counts
from sf_platform_tests.core.qa.scenes import obj, scene

TASK = "conditional_counting"


def rows_of(table) -> dict[tuple[str, str, str], dict]:
    out = {}
    for r in check_table(table, TASK):
        f = r["fact"]
        out[(f["subject"], f["predicate"], f["object"])] = r
    return out


# The rule tests switch the balance caps off, so every askable count is there to inspect.
NO_CAPS = {"max_pairs_per_image": 100, "max_category_share": 1.0, "count_max_bin_ratio": 100.0,
           "conditional_count_max_value_share": 1.0}


def gen(images, **kw):
    return rows_of(generate_task(TASK, scene(images), QASettings(**{**NO_CAPS, **kw})))


def person(oid, box, depth=5.0, facing="toward", conf=0.9):
    return obj(oid, "Person", box, depth=depth, facing=facing, facing_confidence=conf)


def test_own_code_version_and_a_counting_row_shape():
    assert TASK_CODE_VERSIONS[TASK].startswith("conditional_counting-")
    assert TASK in schemas.TASKS


def test_counts_left_and_right_of_a_unique_reference():
    got = gen({"a": [
        obj(1, "Chair", (20, 300, 80, 400), depth=2.0),
        obj(2, "Chair", (100, 300, 160, 400), depth=2.0),
        obj(3, "Chair", (600, 300, 660, 400), depth=2.0),
        person(9, (350, 100, 450, 500), depth=6.0),
    ]})
    left = got[("Chair", "count_left_of", "9")]
    assert left["answer"] == "2" and [o["object_id"] for o in left["objects"]] == ["1", "2"]
    assert left["question"].count("chairs") == 1 and "person" in left["question"]
    right = got[("Chair", "count_right_of", "9")]
    assert right["answer"] == "1" and [o["object_id"] for o in right["objects"]] == ["3"]
    closer = got[("Chair", "count_closer_than", "9")]
    assert closer["answer"] == "3"
    far = got[("Chair", "count_farther_than", "9")]
    assert far["answer"] == "0" and far["objects"] == []  # present, and all clearly closer


def test_one_instance_inside_the_margin_stops_the_question():
    got = gen({"a": [
        obj(1, "Chair", (20, 300, 80, 400), depth=2.0),
        obj(2, "Chair", (330, 300, 420, 400), depth=5.2),  # overlaps the person's box heavily
        person(9, (350, 100, 450, 500), depth=5.0),
    ]})
    assert ("Chair", "count_left_of", "9") not in got
    assert ("Chair", "count_right_of", "9") not in got
    # chair 2 is inside the depth margin (log 5.2/5.0 < 0.2): no closer/farther either
    assert ("Chair", "count_closer_than", "9") not in got
    assert ("Chair", "count_farther_than", "9") not in got


def test_reference_must_be_unique_and_category_clean():
    got = gen({"a": [
        obj(1, "Chair", (20, 300, 80, 400), depth=2.0),
        person(8, (300, 100, 380, 500), depth=6.0),
        person(9, (500, 100, 580, 500), depth=6.0),
    ]})
    assert not [k for k in got if k[0] == "Chair" and k[2]]  # two people: "the person" is ambiguous
    crowd = gen({"a": [
        obj(1, "Chair", (20, 300, 80, 400), depth=2.0),
        obj(2, "Chair", (100, 300, 160, 400), depth=2.0, is_crowd=True),
        person(9, (350, 100, 450, 500), depth=6.0),
    ]})
    assert not [k for k in crowd if k[0] == "Chair"]
    incomplete = gen({"a": [
        obj(1, "Chair", (20, 300, 80, 400), depth=2.0, category_incomplete=True),
        person(9, (350, 100, 450, 500), depth=6.0),
    ]})
    assert not [k for k in incomplete if k[0] == "Chair"]


def test_halves_facing_and_size():
    got = gen({"a": [
        person(1, (40, 100, 120, 500), facing="toward"),
        person(2, (200, 100, 280, 500), facing="away"),
        person(3, (600, 100, 680, 500), facing="toward"),
        obj(7, "Dining Table", (500, 400, 560, 440), depth=4.0),
    ]})
    assert got[("Person", "count_in_left_half", "")]["answer"] == "2"
    assert got[("Person", "count_in_right_half", "")]["answer"] == "1"
    assert got[("Person", "count_facing_camera", "")]["answer"] == "2"
    assert got[("Person", "count_facing_away", "")]["answer"] == "1"
    assert got[("Person", "count_larger_than", "7")]["answer"] == "3"
    # a person in the middle straddles the centre line: no half question; a low-confidence
    # facing: no facing question
    got = gen({"a": [
        person(1, (40, 100, 120, 500)),
        person(2, (360, 100, 440, 500), facing="away", conf=0.4),
    ]})
    assert not [k for k in got if k[1] in ("count_in_left_half", "count_in_right_half")]
    assert not [k for k in got if k[1] in ("count_facing_camera", "count_facing_away")]


@pytest.fixture(scope="module")
def synthetic_truth(tmp_path_factory):
    paths = synthetic.generate(tmp_path_factory.mktemp("syn"), 60, seed=11)
    gt = pq.read_table(paths.ground_truth).to_pylist()
    rows = [{
        "source": "synthetic", "shard": "00000", "image_id": g["image_id"], "object_id": g["object_id"],
        "category": g["category"], "bbox_px": g["bbox_px"],
        "bbox_1000": px_to_1000([g["bbox_px"]], g["width"], g["height"])[0].tolist(),
        "is_crowd": g["is_crowd"], "is_truncated": g["is_truncated"], "file_name": g["file_name"],
        "image_uri": "file:///syn/" + g["file_name"], "width": g["width"], "height": g["height"],
        "depth_median": g["true_depth"], "depth_kind": "metric", "depth_reliable": True,
        "mask_box_iou": 1.0, "facing": g["facing"], "facing_confidence": 1.0 if g["facing"] else None,
    } for g in gt]
    sc = pa.Table.from_pylist(rows, schema=schemas.SCENE)
    return {(g["image_id"], g["object_id"]): g for g in gt}, sc


def test_synthetic_counts_are_true_and_balanced(synthetic_truth):
    gt, sc = synthetic_truth
    s = QASettings()
    table = generate_task(TASK, sc, s)
    rows = table.to_pylist()
    assert check_conditional_counts(rows, gt) == len(rows) > 100
    assert {r["fact"]["predicate"] for r in rows} == set(CONDITIONS)
    values = collections.Counter(r["answer"] for r in rows)
    assert "0" in values and len(values) >= 4
    assert max(values.values()) / len(rows) <= s.conditional_count_max_value_share + 1e-9
    assert values["1"] / len(rows) < 0.5  # not dominated by 1
    report = validate_qa(table, s, scene=sc, tasks=[TASK], name=TASK)
    outcomes = {o.name: o for o in report.outcomes}
    assert report.passed, [o.name for o in report.outcomes if not o.success]
    share = outcomes[f"balance.count_value_share.{TASK}"]
    assert share.success and not share.skipped and share.observed["value_shares"]["0"] > 0
    assert outcomes["answers.conditional_count_in_range"].success


def test_suite_catches_a_wrong_or_unbalanced_count(synthetic_truth):
    _, sc = synthetic_truth
    s = QASettings()
    table = generate_task(TASK, sc, s)
    # rows answering "1" repeated (a generator that stopped capping): the value share fails
    ones = table.filter(pa.compute.equal(table.column("answer"), "1"))
    report = validate_qa(pa.concat_tables([table] + [ones] * 4), s, tasks=[TASK], name=TASK)
    failed = {o.name for o in report.outcomes if not o.success}
    assert f"balance.count_value_share.{TASK}" in failed
    # an answer that disagrees with its fact, or above the cap, fails
    wrong = table.set_column(table.schema.get_field_index("answer"), "answer",
                             pa.array(["1"] * table.num_rows))
    failed = {o.name for o in validate_qa(wrong, s, tasks=[TASK], name=TASK).outcomes if not o.success}
    assert "answers.conditional_count_equals_fact" in failed
    big = table.set_column(table.schema.get_field_index("answer"), "answer",
                           pa.array([str(s.count_cap + 1)] * table.num_rows))
    failed = {o.name for o in validate_qa(big, s, tasks=[TASK], name=TASK).outcomes if not o.success}
    assert "answers.conditional_count_in_range" in failed
