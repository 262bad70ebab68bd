"""Check conditional counts against the synthetic generator's exact geometry (ground_truth.parquet)."""

from __future__ import annotations


def _centre(b):
    return (b[0] + b[2]) / 2.0


def _area(b):
    return (b[2] - b[0]) * (b[3] - b[1])


def _left_of(a, b) -> bool:
    """a clearly left of b in true pixels (as test_left_right checks)."""
    return _centre(a) < _centre(b) and a[0] <= b[0] and a[2] <= b[2]


def meets(cond: str, o: dict, ref: dict | None) -> bool:
    """Does ground-truth object ``o`` meet ``cond`` (w.r.t. ``ref``)?"""
    b = o["bbox_px"]
    if cond == "count_left_of":
        return _left_of(b, ref["bbox_px"])
    if cond == "count_right_of":
        return _left_of(ref["bbox_px"], b)
    if cond == "count_closer_than":
        return o["true_depth"] < ref["true_depth"]
    if cond == "count_farther_than":
        return o["true_depth"] > ref["true_depth"]
    if cond == "count_larger_than":
        return _area(b) > _area(ref["bbox_px"])
    if cond == "count_in_left_half":
        return b[2] <= o["width"] / 2 + 1.0  # a pixel of rounding into the 1000 grid
    if cond == "count_in_right_half":
        return b[0] >= o["width"] / 2 - 1.0
    if cond == "count_facing_camera":
        return o["facing"] == "toward"
    if cond == "count_facing_away":
        return o["facing"] == "away"
    raise AssertionError(f"unknown condition {cond}")


def check_conditional_counts(rows: list[dict], gt: dict) -> int:
    """Every row's count and counted ids agree with the truth, instance by instance, and every
    instance not counted clearly fails the condition.  Returns how many rows were checked."""
    by_image: dict[str, list[dict]] = {}
    for g in gt.values():
        by_image.setdefault(g["image_id"], []).append(g)
    for r in rows:
        f = r["fact"]
        cat, cond = f["subject"], f["predicate"]
        objs = [g for g in by_image[r["image_id"]] if g["category"] == cat]
        assert objs, ("zero is only asked about a category that is present", r)
        assert not any(g["is_crowd"] for g in objs), ("no crowd category is counted", r)
        ref = gt[(r["image_id"], f["object"])] if f["object"] else None
        if ref is not None:
            assert ref["category"] != cat
            assert sum(g["category"] == ref["category"] for g in by_image[r["image_id"]]) == 1, r
        counted = {o["object_id"] for o in r["objects"]}
        truth = {g["object_id"] for g in objs if meets(cond, g, ref)}
        assert counted == truth, (r["question"], counted, truth)
        if cond not in ("count_in_left_half", "count_in_right_half"):
            # the opposite condition holds for every instance not counted (nothing borderline)
            opposite = {"count_left_of": "count_right_of", "count_right_of": "count_left_of",
                        "count_closer_than": "count_farther_than", "count_farther_than": "count_closer_than"}
            if cond in opposite:
                assert all(meets(opposite[cond], g, ref) for g in objs if g["object_id"] not in truth), r
        assert int(f["value"]) == int(r["answer"]) == len(truth) == r["evidence"]["count"], r
    return len(rows)
