"""What the synthetic scenes contain: object categories with real-world sizes and depth ranges,
and the COCO person-keypoint vocabulary and facings of the drawn figures."""

from __future__ import annotations

from dataclasses import dataclass

COCO_KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's person skeleton (1-based keypoint indices), as in person_keypoints_*.json.
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7]]
COCO_SKELETON += [[6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5]]
COCO_SKELETON += [[4, 6], [5, 7]]
from sf_platform.core.facing import FACINGS  # noqa: F401 - the one facing vocabulary


@dataclass(frozen=True)
class Category:
    name: str
    height_m: float
    width_m: float
    z_range: tuple[float, float]
    color: tuple[int, int, int]


CATEGORIES: tuple[Category, ...] = (
    Category("person", 1.7, 0.6, (2.6, 9.0), (200, 60, 60)),
    Category("chair", 0.9, 0.5, (2.0, 9.0), (140, 80, 30)),
    Category("table", 0.75, 1.4, (2.2, 9.0), (110, 70, 40)),
    Category("car", 1.5, 4.2, (7.0, 13.0), (40, 90, 200)),
    Category("cup", 0.12, 0.12, (1.5, 4.0), (240, 240, 250)),
    Category("bottle", 0.3, 0.09, (1.5, 4.5), (30, 160, 70)),
    Category("dog", 0.6, 0.85, (2.0, 8.0), (170, 120, 60)),
    Category("potted plant", 0.8, 0.5, (2.0, 8.0), (40, 130, 40)),
    Category("lamp", 1.6, 0.45, (2.0, 9.0), (230, 200, 60)),
    Category("book", 0.24, 0.17, (1.5, 4.0), (150, 30, 120)),
)
CATEGORY_BY_NAME = {c.name: c for c in CATEGORIES}
CATEGORY_IDS = {c.name: i + 1 for i, c in enumerate(CATEGORIES)}
CROWD_CATEGORIES = ("cup", "bottle", "book")
