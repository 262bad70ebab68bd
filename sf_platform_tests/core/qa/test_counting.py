from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_table
from sf_platform_tests.core.qa.scenes import image, obj, random_scene, scene

S = QASettings(max_category_share=1.0)


def counts(sc, **kw):
    rows = check_table(
        generate_task("counting", sc, QASettings(max_category_share=1.0, **kw)), "counting"
    )
    out = {}
    for r in rows:
        assert r["fact"]["predicate"] == "count" and r["fact"]["value"] == r["answer"]
        assert r["evidence"]["count"] == int(r["answer"])
        out[r["fact"]["subject"]] = (int(r["answer"]), r["question"])
    return out


def test_counts_instances_with_plural_names():
    sc = scene(
        {
            "i": [obj(k, "Person", (k * 100, 0, k * 100 + 50, 50)) for k in range(3)]
            + [obj(9, "Bus", (0, 300, 200, 500))]
        }
    )
    got = counts(sc)
    assert got["Person"][0] == 3 and "people" in got["Person"][1]
    assert got["Bus"][0] == 1 and "buses" in got["Bus"][1]


def test_never_for_categories_with_group_or_crowd_boxes():
    for flag in ("is_group", "is_crowd", "is_depiction"):
        sc = scene(
            {
                "i": [
                    obj(1, "Car", (0, 0, 100, 100)),
                    obj(2, "Car", (200, 0, 300, 100), **{flag: True}),
                    obj(3, "Dog", (500, 0, 600, 100)),
                ]
            }
        )
        assert set(counts(sc)) == {"Dog"}, flag


def test_counts_above_the_cap_are_not_asked():
    sc = scene({"i": [obj(k, "Cup", (k * 50, 0, k * 50 + 40, 40)) for k in range(12)]})
    assert counts(sc) == {}
    assert counts(sc, count_cap=12)["Cup"][0] == 12


def test_given_image_counts_are_used_directly():
    pts = [
        obj(k, "apples", None, points=[{"x": 10.0 * k, "y": 5.0}], provenance="points")
        for k in range(4)
    ]
    sc = scene(
        {"p1": image(pts, source="pixmo", image_count=7, image_count_label="apples")},
        source="pixmo",
    )
    rows = check_table(generate_task("counting", sc, S), "counting")
    assert [(r["fact"]["subject"], r["answer"]) for r in rows] == [("apples", "7")]
    assert rows[0]["evidence"]["note"] == "given_count"
    assert "apples" in rows[0]["question"]
    assert len(rows[0]["objects"]) == 4  # the labelled points


def test_histogram_is_flattened_on_random_scenes():
    rows = check_table(
        generate_task("counting", random_scene(800, seed=9), QASettings()), "counting"
    )
    values = [int(r["answer"]) for r in rows]
    hist = {v: values.count(v) for v in set(values)}
    sizes = sorted(hist.values())
    median = (
        sizes[len(sizes) // 2]
        if len(sizes) % 2
        else (sizes[len(sizes) // 2 - 1] + sizes[len(sizes) // 2]) / 2
    )
    assert max(sizes) <= 3.0 * median
    assert len(hist) >= 3


def test_a_given_zero_count_is_not_asked():
    pts = [obj(1, "Dog", (0, 0, 100, 100))]
    sc = scene(
        {"p1": image(pts, source="pixmo", image_count=0, image_count_label="apples")},
        source="pixmo",
    )
    rows = check_table(generate_task("counting", sc, S), "counting")
    assert [(r["fact"]["subject"], r["answer"]) for r in rows] == [("Dog", "1")]


def test_point_only_objects_count_one_instance_per_point():
    """B1: a point-only object stands for one instance per point (core.scene.instances)."""
    pts = [{"x": 100.0, "y": 300.0}, {"x": 700.0, "y": 300.0}]
    sc = scene(
        {
            "i": [
                obj(1, "Chair", (300, 200, 500, 400)),
                obj(2, "Chair", None, provenance="points", points=pts),
                obj(3, "Chair", None, provenance="points", points=pts[:1]),
            ]
        }
    )
    assert counts(sc)["Chair"][0] == 4


def test_incomplete_category_is_not_counted():
    """B2: a chair annotation quarantined by curation is a chair the scene does not show."""
    sc = scene(
        {
            "i": [
                obj(1, "Chair", (0, 0, 100, 100), category_incomplete=True),
                obj(2, "Chair", (200, 0, 300, 100), category_incomplete=True),
                obj(3, "Lamp", (500, 0, 600, 100)),
            ]
        }
    )
    assert set(counts(sc)) == {"Lamp"}
