"""The vectorised parsers behind the derived columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.quality.derived import (
    UNPARSEABLE,
    box_strings,
    parse_count,
    parse_grounding,
    polarity,
    yes_share_signal,
)


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
