from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_table, grounding_boxes
from sf_platform_tests.core.qa.scenes import design_example, image, obj, random_scene, scene

S = QASettings(max_category_share=1.0)


def rows_of(sc, **kw):
    return check_table(
        generate_task("grounding", sc, QASettings(max_category_share=1.0, **kw)), "grounding"
    )


def test_design_example_person():
    rows = rows_of(design_example())
    person = [r for r in rows if r["fact"]["subject"] == "53"]
    assert len(person) == 1
    r = person[0]
    assert "the person" in r["question"]
    assert r["answer"] == '{"bbox_2d": [400, 200, 600, 933], "label": "person"}'
    assert r["fact"] == {
        "subject": "53",
        "predicate": "bbox_1000",
        "object": "",
        "value": "[400,200,600,933]",
    }
    assert [o["object_id"] for o in r["objects"]] == ["53"]


def test_repeated_category_needs_an_attribute():
    # Two same-size chairs overlapping horizontally, same depth: no way to tell them apart.
    sc = scene(
        {
            "i": [
                obj(1, "Chair", (100, 100, 300, 300), depth=2.0),
                obj(2, "Chair", (120, 100, 320, 300), depth=2.0),
            ]
        }
    )
    rows = rows_of(sc)
    assert [r["template_id"][:4] for r in rows] == ["gr.m"]  # only the multi-instance form
    assert grounding_boxes(rows[0]["answer"]) == [[125, 167, 375, 500], [150, 167, 400, 500]]
    assert rows[0]["fact"]["value"] == "[[125,167,375,500],[150,167,400,500]]"


def test_multi_instance_never_with_crowd_or_group_boxes():
    for flag in ("is_crowd", "is_group"):
        sc = scene(
            {
                "i": [
                    obj(1, "Chair", (0, 0, 100, 100)),
                    obj(2, "Chair", (500, 0, 600, 100)),
                    obj(3, "Chair", (200, 300, 700, 600), **{flag: True}),
                    obj(4, "Dog", (300, 0, 400, 100)),
                ]
            }
        )
        rows = rows_of(sc)
        assert {r["fact"]["subject"] for r in rows} == {"4"}, flag


def test_multi_lists_every_instance_left_to_right_up_to_count_cap():
    objs = [obj(k, "Cup", (700 - 60 * k, 10, 740 - 60 * k, 50)) for k in range(4)]
    rows = [r for r in rows_of(scene({"i": objs})) if r["fact"]["predicate"] == "all_bbox_1000"]
    assert len(rows) == 1
    xs = [b[0] for b in grounding_boxes(rows[0]["answer"])]
    assert xs == sorted(xs) and len(xs) == 4
    assert [o["object_id"] for o in rows[0]["objects"]] == ["3", "2", "1", "0"]
    assert rows[0]["evidence"]["count"] == 4
    assert not [
        r
        for r in rows_of(scene({"i": objs}), count_cap=3)
        if r["fact"]["predicate"] == "all_bbox_1000"
    ]


def test_boxes_at_image_edges_are_0_and_1000():
    sc = scene({"i": image([obj(1, "Car", (0, 0, 1280, 720))], width=1280, height=720)})
    (r,) = rows_of(sc)
    assert grounding_boxes(r["answer"]) == [[0, 0, 1000, 1000]]


def test_per_image_cap_and_answers_match_objects_on_random_scenes():
    rows = rows_of(random_scene(300, seed=2))
    per_image = {}
    for r in rows:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
        assert grounding_boxes(r["answer"]) == [o["bbox_1000"] for o in r["objects"]]
    assert max(per_image.values()) <= S.max_grounding_per_image


def test_multi_instance_needs_a_complete_boxed_category():
    """B1/B2: no "every chair" list when a chair is point-only or a chair annotation was lost."""
    chairs = [obj(1, "Chair", (0, 0, 100, 100)), obj(2, "Chair", (500, 0, 600, 100))]
    pointed = obj(3, "Chair", None, provenance="points", points=[{"x": 700.0, "y": 400.0}])
    dog = obj(4, "Dog", (300, 0, 400, 100))
    assert {r["fact"]["predicate"] for r in rows_of(scene({"i": chairs}))} >= {"all_bbox_1000"}
    for objs in (
        chairs + [pointed, dog],
        [dict(o, category_incomplete=True) for o in chairs] + [dog],
    ):
        rows = rows_of(scene({"i": objs}))
        assert {r["fact"]["subject"] for r in rows} == {"4"}
