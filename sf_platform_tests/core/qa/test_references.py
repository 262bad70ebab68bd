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


def test_plural_of_singular_nouns_ending_in_s():
    assert [plural(x) for x in ["canvas", "gas", "lens", "zebras", "cameras", "sneakers"]] == [
        "canvases",
        "gases",
        "lenses",
        "zebras",
        "cameras",
        "sneakers",
    ]


def point(x, y):
    return {"points": [{"x": float(x), "y": float(y)}]}


def test_point_only_instances_block_extremes():
    """B1: a boxed chair between two point-only chairs (PixMo points the detector left
    unmatched) is neither the leftmost nor the rightmost chair, nor the largest, nor unique."""
    objs = [
        obj("c1", "Chair", (480, 180, 640, 420), depth=2.0),
        obj("c2", "Chair", None, provenance="points", **point(80, 300)),
        obj("c3", "Chair", None, provenance="points", **point(760, 300)),
        obj("t", "Table", (80, 60, 240, 180), depth=9.0),
    ]
    v = view(objs)
    assert not any(ok(v, "c1", a) for a in ATTRIBUTES)
    assert ok(v, "t", "unique")
    r = references(v, ATTRIBUTES, "t", fallback_box=False)
    assert r.phrase.to_pylist() == [None, None, None, "table"]
    # One point-only chair is enough: the boxed one is no longer the only chair.
    v = view([obj("c1", "Chair", (480, 180, 640, 420)), obj("c2", "Chair", None, **point(80, 300))])
    assert not ok(v, "c1", "unique")
    # Once every chair has a box, the attribute comes back.
    v = view([obj("c1", "Chair", (480, 180, 640, 420)), obj("c2", "Chair", (40, 180, 200, 420))])
    assert ok(v, "c1", "rightmost") and ok(v, "c2", "leftmost")


def test_incomplete_category_is_never_named_by_attribute_but_by_box():
    """B2: a chair annotation lost to quarantine may be the real rightmost chair."""
    objs = [
        obj(1, "Chair", (0, 0, 100, 100), category_incomplete=True),
        obj(2, "Chair", (500, 0, 600, 100), category_incomplete=True),
        obj(3, "Lamp", (300, 0, 400, 100), category_incomplete=True),
        obj(4, "Dog", (700, 0, 800, 100)),
    ]
    v = view(objs)
    assert not any(ok(v, i, a) for i in (1, 2, 3) for a in ATTRIBUTES)
    assert ok(v, 4, "unique")
    r = references(v, ATTRIBUTES, "t", fallback_box=True)
    assert r.phrase.to_pylist() == [
        "chair at [0, 0, 125, 167]",
        "chair at [625, 0, 750, 167]",
        "lamp at [375, 0, 500, 167]",
        "dog",
    ]


def test_leftmost_uses_the_left_right_overlap_rule():
    """B5: extremes follow scene_view.clearly_left_of, so they agree with left_right."""
    # Overlap 80 of 200 (40% of the narrower) with centres 120 apart: not clear.
    v = view([obj(1, "Chair", (0, 0, 160, 100)), obj(2, "Chair", (96, 0, 256, 100))])
    assert not ok(v, 1, "leftmost") and not ok(v, 2, "rightmost")
    # Overlap 25%: clear.
    v = view([obj(1, "Chair", (0, 0, 160, 100)), obj(2, "Chair", (120, 0, 280, 100))])
    assert ok(v, 1, "leftmost") and ok(v, 2, "rightmost")
    # Three chairs: the leftmost must be clear of every other one, not just the nearest.
    v = view(
        [
            obj(1, "Chair", (0, 0, 160, 100)),
            obj(2, "Chair", (400, 0, 560, 100)),
            obj(3, "Chair", (60, 0, 700, 100)),  # wide, overlaps chair 1 over 62% of its width
        ]
    )
    assert not ok(v, 1, "leftmost")
