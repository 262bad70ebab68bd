"""Property tests of core/boxes.py conversions (the [0, 1000] grid every QA box uses)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core import boxes

sizes = st.integers(min_value=1, max_value=8000)


@st.composite
def box_in_image(draw):
    w, h = draw(sizes), draw(sizes)
    x1 = draw(st.floats(0, w, allow_nan=False))
    x2 = draw(st.floats(0, w, allow_nan=False))
    y1 = draw(st.floats(0, h, allow_nan=False))
    y2 = draw(st.floats(0, h, allow_nan=False))
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], w, h


@settings(deadline=None, max_examples=60)
@given(box_in_image())
def test_px_to_1000_is_a_valid_grid_box(case):
    box, w, h = case
    x1, y1, x2, y2 = boxes.one_px_to_1000(box, w, h)
    assert 0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 1000


@settings(deadline=None, max_examples=60)
@given(box_in_image())
def test_round_trip_error_is_half_a_grid_unit(case):
    box, w, h = case
    b = boxes.one_px_to_1000(box, w, h)
    back = boxes.box_1000_to_px(b, w, h)
    if box[2] - box[0] >= w / 1000 and box[3] - box[1] >= h / 1000:  # not collapsed
        for got, want, size in zip(back, box, (w, h, w, h)):
            assert abs(got - want) <= size / 2000 + 1e-6


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 4000), st.integers(1, 4000))
def test_full_image_box_is_the_full_grid(w, h):
    assert boxes.one_px_to_1000([0, 0, w, h], w, h) == [0, 0, 1000, 1000]


@settings(deadline=None, max_examples=60)
@given(box_in_image(), st.sampled_from([2, 3, 4]))
def test_self_inverse_orientations(case, o):
    box, w, h = case
    once = boxes.orient_boxes(np.asarray([box]), o, w, h)
    twice = boxes.orient_boxes(once, o, w, h)
    assert np.allclose(twice[0], box)


@settings(deadline=None, max_examples=60)
@given(box_in_image(), st.sampled_from([(6, 8), (8, 6), (5, 5), (7, 7)]))
def test_rotations_compose_to_identity(case, pair):
    box, w, h = case
    a, b = pair
    once = boxes.orient_boxes(np.asarray([box]), a, w, h)
    ow, oh = (h, w)  # tags 5..8 swap the axes
    back = boxes.orient_boxes(once, b, ow, oh)
    assert np.allclose(back[0], box)
