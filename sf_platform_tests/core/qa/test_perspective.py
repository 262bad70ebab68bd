import pytest

from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_relation_answers
from sf_platform_tests.core.qa.scenes import image, obj, random_scene, scene

S = QASettings()


def predicates(facing, obj_box, person_depth=3.0, obj_depth=3.0, conf=0.9):
    sc = scene(
        {
            "i": image(
                [
                    obj(
                        "p",
                        "Person",
                        (400, 100, 600, 900),
                        depth=person_depth,
                        facing=facing,
                        facing_confidence=conf,
                    ),
                    obj("o", "Chair", obj_box, depth=obj_depth),
                ],
                width=1000,
                height=1000,
            )
        }
    )
    t = generate_task("perspective", sc, S)
    check_relation_answers(t, "perspective")
    return {r["fact"]["predicate"] for r in t.to_pylist()}


RIGHT_SIDE = (800, 500, 900, 700)
LEFT_SIDE = (100, 500, 200, 700)


def test_person_facing_the_camera_has_their_left_on_the_image_right():
    assert predicates("toward", RIGHT_SIDE) == {"left_of_person"}
    assert predicates("toward", LEFT_SIDE) == {"right_of_person"}


def test_person_facing_away_has_their_left_on_the_image_left():
    assert predicates("away", RIGHT_SIDE) == {"right_of_person"}
    assert predicates("away", LEFT_SIDE) == {"left_of_person"}


@pytest.mark.parametrize(
    "facing,obj_depth,expected",
    [
        ("toward", 1.5, "in_front_of_person"),
        ("toward", 6.0, "behind_person"),
        ("away", 1.5, "behind_person"),
        ("away", 6.0, "in_front_of_person"),
    ],
)
def test_front_behind_from_depth(facing, obj_depth, expected):
    assert predicates(facing, RIGHT_SIDE, obj_depth=obj_depth) == {
        expected,
        "left_of_person" if facing == "toward" else "right_of_person",
    }


def test_depth_gap_below_margin_gives_no_front_behind():
    assert predicates("toward", RIGHT_SIDE, obj_depth=3.3) == {"left_of_person"}


def test_profile_facing_side_is_in_front():
    assert predicates("left", LEFT_SIDE) == {"in_front_of_person"}
    assert predicates("left", RIGHT_SIDE) == {"behind_person"}
    assert predicates("right", RIGHT_SIDE) == {"in_front_of_person"}


def test_low_confidence_and_unknown_facing_are_skipped():
    assert predicates("toward", RIGHT_SIDE, conf=0.5) == set()
    assert predicates("unknown", RIGHT_SIDE) == set()
    assert predicates("toward", (450, 500, 550, 700)) == set()  # object inside the person's extent


def test_random_scenes_are_consistent_and_balanced():
    t = generate_task("perspective", random_scene(600, seed=13), S)
    rows = check_relation_answers(t, "perspective")
    assert len(rows) > 100
    persons = {
        r["objects"][0]["object_id"] if r["objects"][0]["category"] == "Person" else None
        for r in rows
    }
    assert persons - {None}
    for r in rows:
        assert r["evidence"]["score"] >= S.min_facing_confidence
        assert r["evidence"]["note"] in ("toward", "away", "left", "right")


def test_heavily_overlapping_object_is_neither_left_nor_right():
    """B5: perspective shares left_right's overlap rule: a sofa the person sits on (boxes
    overlapping over most of their width) gets no left/right question."""
    assert (
        predicates("toward", (420, 500, 900, 900)) & {"left_of_person", "right_of_person"} == set()
    )
    assert "left_of_person" in predicates("toward", (560, 500, 900, 900))  # overlap 40 of 200
