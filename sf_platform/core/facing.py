"""Which way a person faces, from COCO-17 keypoints, with a confidence that is low when unsure.

Labels (camera-centric image, the *person's own* left/right for keypoints):
- ``"toward"``: facing the camera.  Their left shoulder (5) is on the image RIGHT of their
  right shoulder (6), and their face (nose, eyes) is visible.
- ``"away"``: back to the camera.  Left shoulder on the image left; no face points.
- ``"left"`` / ``"right"``: profile, the person faces image-left / image-right.  The shoulders
  nearly overlap horizontally and the nose sits off the shoulder midpoint toward that side.
- ``"unknown"``: not enough evidence (confidence 0).

The measurements are normalised by the torso length (shoulder midpoint to hip midpoint, or
0.3 x the box height when the hips are missing: the torso is ~30% of standing body height),
so they do not depend on how large the person is in the image.

Thresholds and why:
- ``SHOULDER_FRONTAL = 0.35``: an adult's frontal shoulder width is ~0.7-0.8 of the torso
  length; a quarter turn divides the projected width by ~1.4 (cos 45 deg), i.e. ~0.5.  Above
  0.35 the body is closer to frontal/back than to profile; below it we call it a profile.
- Confidence of a frontal/back call grows linearly from 0.5 at the threshold to 1.0 at 0.7
  (a fully frontal pose), then is scaled by how well the face agrees: a frontal geometry with
  no face point is suspicious (keypoint detectors swap left/right on backs), x0.6; a back
  geometry with a visible nose contradicts itself, x0.5.  Either way the result falls below
  ``QASettings.min_facing_confidence`` (0.6) unless the geometry is very clear.
- ``NOSE_OFFSET = 0.1``: in profile the nose is ~0.2-0.3 torso lengths in front of the
  shoulder line; below 0.1 it is within keypoint noise of the midpoint.  Profile confidence
  rises from 0.5 at 0.1 to 1.0 at 0.3, scaled down by how much the shoulders still spread.
- Missing a shoulder: only the face is left.  Eyes in frontal order give "toward" with 0.4, on
  purpose below 0.6, so the perspective task does not use it.
- Shoulders nearly overlapping and no nose: "unknown", 0.
- Every confidence is also scaled by the weakest keypoint score used (scores are clipped to
  [0, 1]; COCO visibility flags 1/2 count as 1).
"""

from __future__ import annotations

import numpy as np

NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER = 0, 1, 2, 3, 4, 5, 6
L_HIP, R_HIP = 11, 12
# The facing vocabulary, defined here only: the pose op writes these labels, the synthetic
# generator draws people in them, and QA reads them (codes 0..3 in this order).
FACINGS = ("toward", "away", "left", "right")
UNKNOWN_FACING = "unknown"
FACING_LABELS = FACINGS + (UNKNOWN_FACING,)

# Bump when a threshold below or the rule changes: the pose asset's code version includes it.
FACING_RULE_VERSION = "1"
MIN_KEYPOINT_SCORE = 0.3
SHOULDER_FRONTAL = 0.35
SHOULDER_FULL = 0.7
NOSE_OFFSET = 0.1
NOSE_FULL = 0.3
NO_FACE_FACTOR = 0.6
CONTRADICTION_FACTOR = 0.5
FACE_ONLY_CONFIDENCE = 0.4
TORSO_SHARE_OF_HEIGHT = 0.3


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def facing_from_keypoints(
    keypoints, box: list[float] | None = None, min_score: float = MIN_KEYPOINT_SCORE
) -> tuple[str, float]:
    """``keypoints``: 51 floats or ``[17, 3]`` (x, y, score) in image pixels -> (facing, confidence)."""
    if keypoints is None:
        return UNKNOWN_FACING, 0.0
    kp = np.asarray(keypoints, dtype=np.float64).reshape(17, 3)
    score = np.clip(np.nan_to_num(kp[:, 2]), 0.0, 1.0)
    vis = score >= min_score

    def x(i):
        return kp[i, 0]

    face_visible = bool(vis[NOSE] or vis[L_EYE] or vis[R_EYE])

    if not (vis[L_SHOULDER] and vis[R_SHOULDER]):
        if vis[L_EYE] and vis[R_EYE] and x(L_EYE) > x(R_EYE):
            return FACINGS[0], FACE_ONLY_CONFIDENCE * min(score[L_EYE], score[R_EYE])
        return UNKNOWN_FACING, 0.0

    torso = None
    if vis[L_HIP] and vis[R_HIP]:
        sh_mid = (kp[L_SHOULDER, :2] + kp[R_SHOULDER, :2]) / 2
        hip_mid = (kp[L_HIP, :2] + kp[R_HIP, :2]) / 2
        torso = float(np.linalg.norm(hip_mid - sh_mid))
    if (torso is None or torso <= 0) and box is not None:
        torso = TORSO_SHARE_OF_HEIGHT * (float(box[3]) - float(box[1]))
    if torso is None or torso <= 0:
        return UNKNOWN_FACING, 0.0

    shoulder_score = min(score[L_SHOULDER], score[R_SHOULDER])
    r = (x(L_SHOULDER) - x(R_SHOULDER)) / torso
    if abs(r) > SHOULDER_FRONTAL:
        conf = 0.5 + 0.5 * _ramp(abs(r), SHOULDER_FRONTAL, SHOULDER_FULL)
        if r > 0:
            label = "toward"
            if not face_visible:
                conf *= NO_FACE_FACTOR
        else:
            label = "away"
            if vis[NOSE]:
                conf *= CONTRADICTION_FACTOR
        return label, float(conf * shoulder_score)

    if not vis[NOSE]:
        return UNKNOWN_FACING, 0.0
    mid_x = (x(L_SHOULDER) + x(R_SHOULDER)) / 2
    offset = (x(NOSE) - mid_x) / torso
    if abs(offset) < NOSE_OFFSET:
        return UNKNOWN_FACING, 0.0
    conf = 0.5 + 0.5 * _ramp(abs(offset), NOSE_OFFSET, NOSE_FULL)
    conf *= 1.0 - 0.5 * abs(r) / SHOULDER_FRONTAL  # the more the shoulders spread, the less "profile"
    label = "left" if offset < 0 else "right"
    return label, float(conf * min(shoulder_score, score[NOSE]))
