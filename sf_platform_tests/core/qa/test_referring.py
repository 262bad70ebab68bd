from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import BOX_TEXT, check_table
from sf_platform_tests.core.qa.scenes import design_example, obj, random_scene, scene

S = QASettings(max_category_share=1.0)


def answers(sc):
    rows = check_table(generate_task("referring", sc, S), "referring")
    for r in rows:
        (o,) = r["objects"]
        assert list(map(int, BOX_TEXT.search(r["question"]).groups())) == o["bbox_1000"]
        assert r["fact"] == {
            "subject": o["object_id"],
            "predicate": "is",
            "object": "",
            "value": o["category"],
        }
    return {r["fact"]["subject"]: r["answer"] for r in rows}


def test_design_example():
    got = answers(design_example())
    assert got["53"] == "The person."
    assert got["51"] in (
        "The leftmost chair.",
        "The largest chair.",
        "The chair closest to the camera.",
    )
    assert got["52"] in ("The rightmost chair.", "The chair farthest from the camera.")


def test_ambiguous_objects_are_not_asked():
    sc = scene(
        {
            "i": [
                obj(1, "Chair", (100, 100, 300, 300)),
                obj(2, "Chair", (120, 100, 320, 300)),
                obj(3, "Dog", (500, 0, 600, 100)),
            ]
        }
    )
    assert answers(sc) == {"3": "The dog."}


def test_a_reflection_makes_the_category_ambiguous():
    sc = scene(
        {
            "i": [
                obj(1, "Chair", (100, 100, 300, 300)),
                obj(2, "Chair", (500, 100, 700, 300), is_reflected=True),
            ]
        }
    )
    assert answers(sc) == {}


def test_random_scenes_answers_name_the_category():
    rows = check_table(generate_task("referring", random_scene(200, seed=4), S), "referring")
    assert len(rows) > 100
    for r in rows:
        name = r["objects"][0]["category"]
        assert (name.lower() if name != "TV" else name) in r["answer"]
