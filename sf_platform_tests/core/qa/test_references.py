import numpy as np

from sf_platform.core.qa.references import (
    ATTRIBUTES,
    BOX,
    attributes,
    display_name,
    plural,
    references,
)
from sf_platform.core.qa.scene_view import SceneView
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.scenes import obj, scene


def view(objs, **kw):
    return SceneView(scene({"img": objs}), QASettings(**kw))


def ok(v, object_id, attr):
    i = v.object_id.to_pylist().index(str(object_id))
    return bool(attributes(v).ok[i, ATTRIBUTES.index(attr)])


def test_display_names_and_plurals():
    assert display_name("Dining Table") == "dining table"
    assert display_name("TV") == "TV"
    assert [
        plural(x)
        for x in [
            "chair",
            "bus",
            "glass",
            "person",
            "sneakers",
            "cherry",
            "dining table",
            "TV",
            "knife",
        ]
    ] == [
        "chairs",
        "buses",
        "glasses",
        "people",
        "sneakers",
        "cherries",
        "dining tables",
        "TVs",
        "knives",
    ]


def test_unique_category_is_named_alone():
    v = view([obj(1, "Chair", (10, 10, 100, 100)), obj(2, "Dog", (200, 10, 300, 100))])
    assert ok(v, 1, "unique") and ok(v, 2, "unique")
    r = references(v, ATTRIBUTES, "t", fallback_box=False)
    assert r.phrase.to_pylist() == ["chair", "dog"]


def test_leftmost_needs_clear_separation():
    # Centres 200 apart in 1000-units: clearly left / right of each other.
    v = view([obj(1, "Chair", (0, 0, 160, 100)), obj(2, "Chair", (160, 0, 320, 100))])
    assert ok(v, 1, "leftmost") and ok(v, 2, "rightmost") and not ok(v, 1, "rightmost")
    # Same extents shifted by 2% of the width, overlapping: neither is clearly leftmost.
    v = view([obj(1, "Chair", (100, 0, 300, 100)), obj(2, "Chair", (116, 0, 316, 100))])
    assert not ok(v, 1, "leftmost") and not ok(v, 2, "rightmost")
    # A box inside another box: extents not ordered, no left/right attribute at all.
    v = view([obj(1, "Chair", (100, 0, 700, 100)), obj(2, "Chair", (300, 0, 400, 100))])
    assert not any(ok(v, i, a) for i in (1, 2) for a in ("leftmost", "rightmost"))


def test_largest_needs_the_size_ratio():
    v = view([obj(1, "Car", (0, 0, 200, 200)), obj(2, "Car", (400, 0, 500, 100))])
    assert ok(v, 1, "largest") and not ok(v, 2, "largest")
    v = view([obj(1, "Car", (0, 0, 110, 100)), obj(2, "Car", (400, 0, 500, 100))])
    assert not ok(v, 1, "largest")


def test_closest_needs_depth_margin_and_all_depths_reliable():
    v = view(
        [obj(1, "Cup", (0, 0, 50, 50), depth=1.0), obj(2, "Cup", (300, 0, 350, 50), depth=2.0)]
    )
    assert ok(v, 1, "closest") and ok(v, 2, "farthest")
    v = view(
        [obj(1, "Cup", (0, 0, 50, 50), depth=1.0), obj(2, "Cup", (300, 0, 350, 50), depth=1.1)]
    )
    assert not ok(v, 1, "closest")  # log gap 0.095 < 0.2
    v = view(
        [
            obj(1, "Cup", (0, 0, 50, 50), depth=1.0),
            obj(2, "Cup", (300, 0, 350, 50), depth=3.0, depth_reliable=False),
        ]
    )
    assert not ok(v, 1, "closest")


def test_crowd_or_group_box_makes_the_category_unnameable():
    for flag in ("is_crowd", "is_group", "is_depiction", "is_reflected", "is_fake"):
        v = view(
            [obj(1, "Chair", (0, 0, 100, 100)), obj(2, "Chair", (500, 0, 900, 300), **{flag: True})]
        )
        assert not ok(v, 1, "unique") and not ok(v, 1, "leftmost"), flag
        r = references(v, ATTRIBUTES, "t", fallback_box=False)
        assert r.phrase.to_pylist() == [None, None]
        r = references(v, ATTRIBUTES, "t", fallback_box=True)
        assert r.phrase.to_pylist()[0] == "chair at [0, 0, 125, 167]" and r.code[0] == BOX
        assert r.phrase.to_pylist()[1] is None  # a flagged box is never an endpoint


def test_references_without_attribute_fall_back_to_box_only_if_allowed():
    v = view([obj(1, "Chair", (100, 0, 300, 100)), obj(2, "Chair", (110, 0, 310, 100))])
    r = references(v, ATTRIBUTES, "t", fallback_box=False)
    assert r.phrase.to_pylist() == [None, None]
    r = references(v, ("unique",), "t", fallback_box=True)
    assert r.phrase.to_pylist() == ["chair at [125, 0, 375, 167]", "chair at [138, 0, 388, 167]"]
    assert np.all(r.code == BOX)
