"""The vectorised parsers behind the derived columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.core import schemas
from sf_platform.quality.answers import (
    UNPARSEABLE,
    answer_codes,
    box_strings,
    grounding_box_diff,
    parse_count,
    parse_grounding,
    polarity,
    yes_share_signal,
)
from sf_platform.quality.columns import _box_columns, _take, stripped_bytes
from sf_platform.quality.derived import scene_columns


def test_parse_count():
    got = parse_count(pa.array(["2", " There are 7 chairs. ", "three", "Ten.", "2 or 3", "many", None]))
    assert got.tolist() == [2, 7, 3, 10, UNPARSEABLE, UNPARSEABLE, UNPARSEABLE]


@pytest.mark.parametrize("answer,expected", [
    ('{"bbox_2d": [1, 2, 3, 4], "label": "Person"}', [((1, 2, 3, 4), "person")]),
    ('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"label": "b", "bbox_2d": [5, 6, 7, 8]}]', [((1, 2, 3, 4), "a"), ((5, 6, 7, 8), "b")]),
    ('{"bbox_2d": [1, 2, 3], "label": "a"}', None),
    ('{"bbox_2d": [1.5, 2, 3, 4], "label": "a"}', None),
    ('{"bbox_2d": [1, 2, 3, 4], "label": ""}', None),
    ('{"bbox_2d": [1, 2, 3, 4], "label": "a", "score": 1}', None),
    ("[]", None),
    ("the person", None),
])
def test_parse_grounding(answer, expected):
    assert parse_grounding(answer) == expected


def test_polarity_prefers_the_answer_then_the_question():
    answers = pa.array(["On their left.", "Yes.", "The chair.", "Yes."])
    questions = pa.array(["left or right?", "Is it to the right of the cup?", "Which is on the left, or the right?", "Is it big?"])
    got = polarity(answers, questions, "left", "right")
    assert got[:2].tolist() == [1.0, 0.0] and np.isnan(got[2]) and np.isnan(got[3])


def test_yes_share_signal_and_box_strings():
    got = yes_share_signal(pa.array(["Yes.", "no", "Nope", "YES, it is", None]))
    assert got[:2].tolist() == [1.0, 0.0] and np.isnan(got[2]) and got[3] == 1.0 and np.isnan(got[4])
    assert box_strings(np.array([[1, 2, 3, 4], [np.nan, 0, 0, 0]])).tolist() == ["[1,2,3,4]", ""]


def test_yes_share_signal_reads_only_answers_that_can_start_yes_or_no():
    got = yes_share_signal(pa.array([" \tyes", "nope", "The yes-man.", "", "No, it is not.", "Yesterday"]))
    assert got[0] == 1.0 and np.isnan(got[1]) and np.isnan(got[2]) and np.isnan(got[3]) and got[4] == 0.0
    assert np.isnan(got[5])  # \b: "Yesterday" is not a yes


def test_stripped_bytes_is_zero_exactly_for_blank_text():
    texts = ["  ", "", None, " a ", "\u00a0", "abc", "é ", "\u3000x\u3000", "x\t"]
    got = stripped_bytes(pa.array(texts))
    assert got.tolist() == [0, 0, 0, 1, 0, 3, 2, 1, 1]
    assert stripped_bytes(pa.chunked_array([["a ", " "], ["b"]])).tolist() == [1, 0, 1]
    assert stripped_bytes(pa.array(["x", " "]).slice(1)).tolist() == [0]  # offsets of a slice


@pytest.mark.parametrize("typ", [schemas.BOX_1000, pa.list_(pa.int16())])
def test_box_columns_fixed_and_variable_lists(typ):
    boxes = pa.array([[1, 2, 3, 4], None, [5, 6, 7, 8], [9, 10, 11, 12]], type=typ).slice(1)
    got = _box_columns(boxes)
    assert got.shape == (4, 3) and got.flags["C_CONTIGUOUS"]
    assert np.isnan(got[:, 0]).all() and got[:, 1].tolist() == [5, 6, 7, 8] and got[:, 2].tolist() == [9, 10, 11, 12]
    short = _box_columns(pa.array([[1, 2, 3], [1, 2, 3, 4]], type=pa.list_(pa.int16())))
    assert np.isnan(short[:, 0]).all() and short[:, 1].tolist() == [1, 2, 3, 4]


def test_take_slices_only_a_run_of_consecutive_rows():
    a = pa.chunked_array([["a", "b"], ["c", "d"]])
    assert _take(a, np.array([1, 2, 3])).to_pylist() == ["b", "c", "d"]
    assert _take(a, np.array([0, 0, 2])).to_pylist() == ["a", "a", "c"]  # span 3 = length 3, not a run
    assert _take(a, np.array([3, 1])).to_pylist() == ["d", "b"]


def test_answer_codes_vocabulary():
    allowed = {("lr", "yn"): frozenset({"Yes.", "No."}), ("g", "json"): None}

    def lookup(task, template):
        return allowed[(task, template)]

    task_names = ["g", "lr"]
    tcode = np.array([1, 0, 1, 1, 1])
    rows, codes, vocabulary, n_allowed = answer_codes(
        tcode, task_names, pa.array(["yn", "json", "yn", "unknown", "yn"]), pa.array(["No.", "{}", "Maybe", "Yes.", None]), lookup)
    assert n_allowed == 2 and vocabulary[:2] == ["lr/yn -> No.", "lr/yn -> Yes."]
    assert rows.tolist() == [0, 2, 3, 4]  # the open "g/json" row is not checked
    assert [vocabulary[c] for c in codes] == ["lr/yn -> No.", "lr/yn -> Maybe", "lr/unknown -> Yes.", "lr/yn -> <null>"]
    assert all(c >= n_allowed for c in codes[1:])  # unknown template: an empty set, so it fails


def test_grounding_tiers_agree():
    """Exact generator form (string equality), any spacing or label case (regex), several
    instances (JSON) each decide the rows they can, with the same verdicts."""
    cats = pa.array(["chair", "Cup", "chair", "lamp", "lamp", "chair"])
    coords = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4], [10, 20, 30, 40], [50, 60, 70, 80], [1, 2, 3, 4]], float)
    answers = pa.array([
        '{"bbox_2d": [1, 2, 3, 4], "label": "chair"}',  # exact
        '{ "bbox_2d":[5,6,7,8], "label": "CUP" }',  # regex
        '{"bbox_2d": [1, 2, 3, 7], "label": "chair"}',  # 3 off
        '[{"bbox_2d": [50, 60, 70, 80], "label": "lamp"}, {"bbox_2d": [10, 20, 30, 40], "label": "lamp"}]',
        '{"bbox_2d": [1, 2, 3, 4], "label": "chair"}',  # fact disagrees
    ])
    facts = pa.array(["[1,2,3,4]", "[5, 6, 7, 8]", "[1,2,3,4]", "[[10,20,30,40],[50,60,70,80]]", "[1,2,3,5]"])
    got = grounding_box_diff(answers, facts, np.array([0, 1, 2, 3, 5]), np.array([1, 1, 1, 2, 1]), cats, coords)
    assert got.tolist() == [0.0, 0.0, 3.0, 0.0, UNPARSEABLE]


def test_scene_columns_join_on_image_and_object():
    scene = pa.table({
        "image_id": ["i1", "i1", "i2"], "object_id": ["a", "b", "a"],
        "bbox_1000": pa.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 2, 2]], type=schemas.BOX_1000),
        "bbox_px": pa.array([[0.0, 0.0, 8.0, 6.0], [4.0, 3.0, 16.0, 13.0], [-3.0, 0.0, 2.0, 2.0]], type=schemas.BOX_PX),
        "width": pa.array([800, 800, 800], pa.int32()), "height": pa.array([600, 600, 600], pa.int32()),
    })
    boxes = np.array([[0, 0, 10, 10], [1, 1, 2, 2], [5, 5, 20, 23], [0, 0, 10, 10]], float).T.copy()
    got = scene_columns(pa.array(["i1", "i2", "i1", "i2"]), pa.array(["a", "a", "b", "b"]), boxes, scene)
    assert got["in_scene"].tolist() == [1, 1, 1, 0]
    assert got["scene_box_diff"][:3].tolist() == [0, 0, 3] and np.isnan(got["scene_box_diff"][3])
    assert got["px_overflow"][1] == 3.0 and got["px_min_side"][0] == 6.0 and np.isnan(got["px_overflow"][3])
