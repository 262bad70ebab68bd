import math

import numpy as np
import pytest

from sf_platform.core.qa.generate import generate_task
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_relation_answers
from sf_platform_tests.core.qa.scenes import image, obj, random_scene, scene

S = QASettings()


def facts(table):
    return {(r["fact"]["subject"], r["fact"]["object"]) for r in table.to_pylist()}


def pair(d1, d2, box2=(400, 0, 600, 200), **kw2):
    return scene(
        {
            "i": [
                obj("a", "Chair", (0, 0, 200, 200), depth=d1),
                obj("b", "Dog", box2, depth=d2, **kw2),
            ]
        }
    )


def test_metric_margin_on_log_depth():
    assert facts(generate_task("near_far", pair(2.0, 3.0), S)) == {("a", "b")}  # log gap 0.405
    assert facts(generate_task("near_far", pair(3.0, 2.0), S)) == {("b", "a")}
    # log(2.4/2.0) = 0.18 < 0.2: too close to call.
    assert generate_task("near_far", pair(2.0, 2.4), S).num_rows == 0
    assert (
        generate_task("near_far", pair(2.0, 2.4), QASettings(near_far_log_margin=0.1)).num_rows == 1
    )


def test_disparity_margin_on_image_range():
    def disp(d1, d2, lo=0.0, hi=10.0):
        kw = {
            "depth_kind": "disparity",
            "depth_reliable": True,
            "image_depth_min": lo,
            "image_depth_max": hi,
        }
        return scene(
            {
                "i": [
                    obj("a", "Chair", (0, 0, 200, 200), depth_median=d1, **kw),
                    obj("b", "Dog", (400, 0, 600, 200), depth_median=d2, **kw),
                ]
            }
        )

    # Larger disparity = closer; gap 2/10 = 0.2 > 0.15.
    assert facts(generate_task("near_far", disp(6.0, 4.0), S)) == {("a", "b")}
    assert generate_task("near_far", disp(6.0, 5.0), S).num_rows == 0  # 0.1 of the range
    assert (
        generate_task("near_far", disp(6.0, 5.0, hi=6.0), S).num_rows == 1
    )  # 1/6 of a smaller range


@pytest.mark.parametrize(
    "kw",
    [
        {"is_truncated": True},
        {"is_group": True},
        {"is_depiction": True},
        {"is_crowd": True},
        {"is_reflected": True},
        {"is_fake": True},
        {"depth_reliable": False},
        {"box2": (400, 0, 410, 10)},  # 0.02% of the image: below min_object_area_frac
    ],
)
def test_excluded_endpoints(kw):
    assert generate_task("near_far", pair(2.0, 5.0, **kw), S).num_rows == 0


def test_reliability_is_the_scenes_decision_not_a_second_mask_gate():
    """A poor mask does not veto a pair on its own: the scene already fell back to the box and
    judged the depth (``depth_reliable``); QA used to drop the pair again on mask_box_iou."""
    assert facts(generate_task("near_far", pair(2.0, 5.0, mask_box_iou=0.2), S)) == {("a", "b")}
    unreliable = pair(2.0, 5.0, mask_box_iou=0.2, depth_reliable=False)
    assert generate_task("near_far", unreliable, S).num_rows == 0


def test_answers_match_true_depths_on_random_scenes():
    sc = random_scene(400, seed=3)
    table = generate_task("near_far", sc, S)
    rows = check_relation_answers(table, "near_far")
    assert len(rows) > 100
    true = {}
    for r in sc.to_pylist():
        d = r["depth_median"]
        true[(r["image_id"], r["object_id"])] = 1.0 / d if r["depth_kind"] == "disparity" else d
    for r in rows:
        closer = true[(r["image_id"], r["fact"]["subject"])]
        farther = true[(r["image_id"], r["fact"]["object"])]
        assert closer < farther
        if r["evidence"]["note"] == "metric":
            assert math.log(farther) - math.log(closer) > S.near_far_log_margin
            assert r["evidence"]["depth_a"] == pytest.approx(closer, rel=1e-6)
        assert r["evidence"]["margin"] > r["evidence"]["threshold"]


def test_both_orders_and_all_kinds_appear():
    table = generate_task("near_far", random_scene(300, seed=5), S)
    rows = table.to_pylist()
    first_is_closer = np.mean([r["objects"][0]["object_id"] == r["fact"]["subject"] for r in rows])
    assert 0.35 < first_is_closer < 0.65
    assert {r["template_id"].split(".")[1][0] for r in rows} == {"c", "y", "w"}


def test_per_image_cap():
    objs = [obj(k, f"Cat{k}", (k * 60, 0, k * 60 + 50, 50), depth=1.5**k) for k in range(10)]
    table = generate_task(
        "near_far",
        scene({"i": image(objs, width=1000, height=1000)}),
        QASettings(max_category_share=1.0),
    )
    assert table.num_rows == S.max_pairs_per_image
