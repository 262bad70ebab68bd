"""Facing from COCO keypoints: the four directions, and low confidence on weak evidence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.facing import (
    L_EAR,
    L_EYE,
    L_HIP,
    L_SHOULDER,
    NOSE,
    R_EAR,
    R_EYE,
    R_HIP,
    R_SHOULDER,
    facing_from_keypoints,
)  # fmt: skip

MIN_CONF = 0.6  # QASettings.min_facing_confidence
# COCO left/right pairs (eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]


def skeleton(facing: str, cx: float = 200.0, h: float = 300.0) -> np.ndarray:
    """A standing person of height ``h`` px; left/right are the person's own."""
    kp = np.zeros((17, 3))
    if facing in ("toward", "away"):
        side = 1.0 if facing == "toward" else -1.0  # image-x of the person's own left
        for left, right, span, y in [(L_SHOULDER, R_SHOULDER, 0.11, 0.19), (L_HIP, R_HIP, 0.07, 0.52),
                                     (L_EYE, R_EYE, 0.03, 0.06), (L_EAR, R_EAR, 0.055, 0.07)]:
            kp[left] = (cx + side * span * h, y * h, 1.0)
            kp[right] = (cx - side * span * h, y * h, 1.0)
        kp[NOSE] = (cx, 0.075 * h, 1.0)
        if facing == "away":
            kp[[NOSE, L_EYE, R_EYE]] = 0.0
        return kp
    d = -1.0 if facing == "left" else 1.0
    for left, right, y in [(L_SHOULDER, R_SHOULDER, 0.19), (L_HIP, R_HIP, 0.52)]:
        kp[left] = (cx + 0.01 * h, y * h, 0.9)
        kp[right] = (cx - 0.01 * h, y * h, 0.9)
    kp[NOSE] = (cx + d * 0.08 * h, 0.08 * h, 0.9)
    return kp


def mirror(kp: np.ndarray, width: float = 400.0) -> np.ndarray:
    """The same person in a horizontally flipped photo: x mirrored, own left/right unchanged
    in meaning, so each left/right pair swaps image sides."""
    m = kp.copy()
    vis = m[:, 2] > 0
    m[vis, 0] = width - m[vis, 0]
    for a, b in PAIRS:
        m[[a, b]] = m[[b, a]]
    return m


@pytest.mark.parametrize("facing", ["toward", "away", "left", "right"])
def test_clear_poses_are_recognised_confidently(facing):
    label, conf = facing_from_keypoints(skeleton(facing))
    assert label == facing
    assert conf >= MIN_CONF


def test_toward_means_left_shoulder_on_image_right():
    kp = skeleton("toward")
    assert kp[L_SHOULDER, 0] > kp[R_SHOULDER, 0]
    assert facing_from_keypoints(kp.reshape(-1).tolist())[0] == "toward"  # flat 51 floats too


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["toward", "away", "left", "right"]), st.floats(100, 300), st.floats(80, 600))
def test_mirroring_the_photo_swaps_profile_sides_only(facing, cx, h):
    expected = {"toward": "toward", "away": "away", "left": "right", "right": "left"}[facing]
    label, conf = facing_from_keypoints(mirror(skeleton(facing, cx, h)))
    assert label == expected and conf >= MIN_CONF


def test_missing_shoulder_gives_low_confidence():
    kp = skeleton("toward")
    kp[R_SHOULDER] = 0.0
    label, conf = facing_from_keypoints(kp)
    assert label == "toward" and conf < MIN_CONF  # eyes alone: a hint, not enough to ask
    kp[[L_EYE, R_EYE]] = 0.0
    assert facing_from_keypoints(kp) == ("unknown", 0.0)


def test_overlapping_shoulders_without_nose_is_unknown():
    kp = skeleton("left")
    kp[NOSE] = 0.0
    assert facing_from_keypoints(kp) == ("unknown", 0.0)


def test_frontal_geometry_without_face_or_with_contradiction_is_not_confident():
    kp = skeleton("toward")
    kp[[NOSE, L_EYE, R_EYE]] = 0.0
    assert facing_from_keypoints(kp)[1] < MIN_CONF
    away = skeleton("away")
    away[NOSE] = (200.0, 20.0, 1.0)  # a nose seen on a back: the keypoints contradict themselves
    assert facing_from_keypoints(away)[1] < MIN_CONF


def test_weak_keypoint_scores_lower_confidence():
    kp = skeleton("toward")
    kp[:, 2] = np.where(kp[:, 2] > 0, 0.4, 0.0)
    label, conf = facing_from_keypoints(kp)
    assert label == "toward" and conf < MIN_CONF


def test_no_torso_reference_is_unknown_and_box_fallback_works():
    kp = skeleton("toward")
    kp[[L_HIP, R_HIP]] = 0.0
    assert facing_from_keypoints(kp)[0] == "unknown"
    label, conf = facing_from_keypoints(kp, box=[100, 0, 300, 300])
    assert label == "toward" and conf >= MIN_CONF
    assert facing_from_keypoints(None) == ("unknown", 0.0)


def test_coco_visibility_flags_count_as_full_score():
    kp = skeleton("away")
    _, conf_score_one = facing_from_keypoints(kp)
    kp[kp[:, 2] > 0, 2] = 2.0  # COCO v=2 (visible)
    label, conf = facing_from_keypoints(kp)
    assert label == "away" and conf == pytest.approx(conf_score_one) and conf > 0.9
