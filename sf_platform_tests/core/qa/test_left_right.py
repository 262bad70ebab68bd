from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_relation_answers
from sf_platform_tests.core.qa.scenes import image, obj, random_scene, scene

S = QASettings()


def lr(box_a, box_b, **kw):
    sc = scene(
        {"i": image([obj("a", "Chair", box_a), obj("b", "Dog", box_b)], width=1000, height=1000)}
    )
    return {
        (r["fact"]["subject"], r["fact"]["object"])
        for r in generate_task("left_right", sc, QASettings(**kw)).to_pylist()
    }


def test_separated_boxes():
    assert lr((0, 0, 100, 100), (100, 0, 200, 100)) == {("a", "b")}  # touching, no overlap
    assert lr((500, 0, 600, 100), (0, 0, 100, 100)) == {("b", "a")}


def test_overlap_needs_ordered_extents_and_centre_gap():
    assert lr((0, 0, 200, 100), (120, 0, 320, 100)) == {("a", "b")}  # centres 120 apart > 50
    assert lr((0, 0, 200, 100), (30, 0, 230, 100)) == set()  # centres 30 apart
    assert lr((0, 0, 600, 100), (200, 0, 300, 100)) == set()  # b inside a's extent
    assert lr((0, 0, 200, 100), (30, 0, 230, 100), left_right_margin=0.02) == {("a", "b")}


def test_edges_of_the_image_are_exact_grid_bounds():
    sc = scene(
        {
            "i": image(
                [obj("a", "Chair", (0, 0, 10, 479)), obj("b", "Dog", (630, 5, 640, 480))],
                width=640,
                height=480,
            )
        }
    )
    t = generate_task("left_right", sc, S)
    rows = check_relation_answers(t, "left_right")
    boxes = {o["object_id"]: o["bbox_1000"] for r in rows for o in r["objects"]}
    assert boxes == {"a": [0, 0, 16, 998], "b": [984, 10, 1000, 1000]}


def test_answers_match_geometry_on_random_scenes():
    sc = random_scene(400, seed=11)
    rows = check_relation_answers(generate_task("left_right", sc, S), "left_right")
    assert len(rows) > 100
    for r in rows:
        by_id = {o["object_id"]: o["bbox_1000"] for o in r["objects"]}
        a, b = by_id[r["fact"]["subject"]], by_id[r["fact"]["object"]]
        assert a[2] <= b[0] or (
            a[0] < b[0] and a[2] < b[2] and (b[0] + b[2] - a[0] - a[2]) / 2 > 50
        )
