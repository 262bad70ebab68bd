"""Synthetic scenes with known geometry: the ground-truth oracle for the whole pipeline.

Each scene is a room seen by a pinhole camera (focal ``0.8 * width`` px, 0.8 m above a flat
floor, horizon at 40% of the height, a far wall at 14 m).  Objects are fronto-parallel planes
standing on the floor at a constant depth ``z``: their pixel size is ``f * metres / z`` and their
foot sits where the floor is at depth ``z``, so the true depth over an object's visible pixels
is exactly ``z``.  They are painted far-to-near, so nearer objects occlude farther ones, and the
depth map holds the ``z`` of the front-most surface at each pixel (floor/wall elsewhere).

What gets written under ``out_dir`` (all deterministic from ``seed``; image ``i`` depends only
on ``(seed, i)``, so scene 7 is the same whether 10 or 100 scenes are generated):

- ``images/<id>.jpg``: the photos.  With ``rotated_every=k`` every k-th photo stores its pixels
  rotated plus an EXIF Orientation tag (6, 8 or 3) so that the *displayed* image is the scene.
- ``annotations.json``: Objects365/COCO detection format, boxes ``[x, y, w, h]`` in the
  *stored* pixel frame (``width``/``height`` are the stored dims), like COCO-style tools measure.
- ``keypoints.json``: COCO person keypoints (17 points, ``[x, y, v] * 17``) for every person,
  same annotation ids and pixel frame as ``annotations.json``.
- ``depth/<stem>.npy``: float32 metres in the *oriented* frame (H x W of the displayed image).
- ``ground_truth.parquet``: one row per annotated object, in the oriented frame
  (:data:`GROUND_TRUTH` schema): what QA answers are tested against.

Persons are drawn figures whose keypoints follow their facing ("toward" the camera, "away",
or in profile facing image-"left"/"right"); left/right keypoints are the person's own.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from sf_platform.core.boxes import orient_boxes, orient_points
from sf_platform.core.facing import FACINGS

GENERATOR_VERSION = 1
MARKER = "_synthetic.json"
DEFAULT_NUM_IMAGES = 24

# Camera and room (see the module docstring).
FOCAL_FRAC = 0.8  # focal length in px as a share of the image width (~64 degree horizontal FOV)
CAMERA_HEIGHT_M = 0.8
HORIZON_FRAC = 0.4
WALL_DEPTH_M = 14.0
# An object is annotated only if at least this share of its shape is visible (after
# occlusion and the image border) and at least MIN_VISIBLE_PX pixels show: annotators do not
# box what they cannot see.
MIN_VISIBLE_FRACTION = 0.2
MIN_VISIBLE_PX = 40

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
# EXIF tags used for rotated images, and the tag that undoes each (oriented -> raw frame).
ROTATION_TAGS = (6, 8, 3)
_INVERSE_TAG = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
# PIL transposes that produce the *raw* pixels from the displayed scene for each tag
# (the inverse of what ImageOps.exif_transpose applies when reading).
_RAW_TRANSPOSE = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}

GROUND_TRUTH = pa.schema(
    [
        ("image_id", pa.string()),
        ("object_id", pa.string()),
        ("category", pa.string()),
        ("bbox_px", pa.list_(pa.float64(), 4)),  # oriented frame, xyxy
        ("true_depth", pa.float64()),  # metres
        ("facing", pa.string()),  # persons only
        ("is_truncated", pa.bool_()),
        ("visible_fraction", pa.float64()),
        ("is_crowd", pa.bool_()),
        ("keypoints", pa.list_(pa.float32(), 51)),  # persons: oriented frame
        ("file_name", pa.string()),
        ("width", pa.int32()),  # oriented
        ("height", pa.int32()),
        ("exif_orientation", pa.int8()),
    ]
)


@dataclass(frozen=True)
class SyntheticPaths:
    images_dir: str
    annotations: str
    depth_dir: str
    keypoints: str
    ground_truth: str


@dataclass
class _Object:
    """One rendered object: a patch (RGB + shape mask) placed at (x0, y0) of the oriented frame."""

    category: str
    z: float
    x0: int
    y0: int
    rgb: np.ndarray
    mask: np.ndarray
    is_crowd: bool = False
    facing: str | None = None
    keypoints: np.ndarray | None = None  # (17, 3) in oriented image coords, v in {0, 1, 2}
    # Filled by composition:
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    visible_fraction: float = 0.0
    is_truncated: bool = False


# --- camera ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Camera:
    width: int
    height: int

    @property
    def focal(self) -> float:
        return FOCAL_FRAC * self.width

    @property
    def horizon(self) -> float:
        return HORIZON_FRAC * self.height

    def foot_y(self, z: float) -> float:
        """Image row where the floor is at depth ``z``."""
        return self.horizon + self.focal * CAMERA_HEIGHT_M / z

    def background_depth(self) -> np.ndarray:
        """Floor (ground plane) below the wall line, the far wall above it; float32 (H, W)."""
        ys = np.arange(self.height, dtype=np.float64) + 0.5
        below = ys - self.horizon
        with np.errstate(divide="ignore"):
            floor = np.where(
                below > 0, self.focal * CAMERA_HEIGHT_M / np.maximum(below, 1e-9), np.inf
            )
        col = np.minimum(floor, WALL_DEPTH_M).astype(np.float32)
        return np.repeat(col[:, None], self.width, axis=1)


def _background(cam: _Camera, rng: np.random.Generator) -> np.ndarray:
    """Wall and floor colour gradients with a mild noise texture, uint8 (H, W, 3)."""
    h, w = cam.height, cam.width
    wall_line = cam.foot_y(WALL_DEPTH_M)
    t = (np.arange(h, dtype=np.float32) / h)[:, None]
    wall = np.asarray(rng.integers(170, 225, 3), np.float32)
    floor = np.asarray(rng.integers(80, 140, 3), np.float32) * np.asarray(
        [1.0, 0.8, 0.6], np.float32
    )
    rows = np.where(t * h < wall_line, wall * (1.0 - 0.25 * t), floor * (0.7 + 0.5 * t))
    img = np.repeat(rows[:, None, :], w, axis=1)
    img += rng.integers(-6, 7, size=(h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- drawing -----------------------------------------------------------------------------
def _jitter(
    color: tuple[int, int, int], rng: np.random.Generator, amount: int = 35
) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


class _Canvas:
    """Draws the same primitives on an RGB patch and on its shape mask."""

    def __init__(self, w: int, h: int):
        self.w, self.h = max(int(w), 2), max(int(h), 2)
        self.rgb = Image.new("RGB", (self.w, self.h))
        self.mask = Image.new("L", (self.w, self.h))
        self._d = ImageDraw.Draw(self.rgb)
        self._m = ImageDraw.Draw(self.mask)

    def rect(self, box, color):
        self._d.rectangle(box, fill=color)
        self._m.rectangle(box, fill=255)

    def ellipse(self, box, color):
        self._d.ellipse(box, fill=color)
        self._m.ellipse(box, fill=255)

    def polygon(self, pts, color):
        self._d.polygon(pts, fill=color)
        self._m.polygon(pts, fill=255)

    def line(self, pts, color, width):
        w = max(round(width), 1)
        self._d.line(pts, fill=color, width=w, joint="curve")
        self._m.line(pts, fill=255, width=w, joint="curve")

    def paint(self, box, color):
        """Colour detail inside the shape without growing the mask (eyes, stripes, windows)."""
        self._d.ellipse(box, fill=color)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.rgb), np.asarray(self.mask) > 0


def _person_keypoints(hp: float, cx: float, top: float, facing: str) -> np.ndarray:
    """17 COCO keypoints (x, y, v) of a standing figure of height ``hp`` px.

    ``side`` is the image-x direction of the person's *own* left: toward the camera their left
    is on the image right (+1), seen from behind on the image left (-1).  In profile the
    shoulders and hips nearly overlap and the nose points to the facing side; the far-side
    eye and ear are hidden (v=0) and far-side limbs are labelled but occluded (v=1).
    """
    kp = np.zeros((17, 3), np.float64)
    rows = {  # name -> (half-span in units of hp, y from the top in units of hp)
        "eye": (0.028, 0.06),
        "ear": (0.055, 0.07),
        "shoulder": (0.11, 0.19),
        "elbow": (0.14, 0.34),
        "wrist": (0.15, 0.48),
        "hip": (0.07, 0.52),
        "knee": (0.07, 0.73),
        "ankle": (0.07, 0.95),
    }
    if facing in ("toward", "away"):
        side = 1.0 if facing == "toward" else -1.0
        for j, name in enumerate(COCO_KEYPOINT_NAMES[1:], start=1):
            part = name.split("_", 1)[1]
            own_left = name.startswith("left")
            span, y = rows[part]
            kp[j] = (cx + (side if own_left else -side) * span * hp, top + y * hp, 2)
        kp[0] = (cx, top + 0.075 * hp, 2)
        if facing == "away":
            kp[0:5] = 0.0  # face not visible from behind
        return kp
    toward = -1.0 if facing == "left" else 1.0  # image-x direction the person faces
    # Facing image-left, the person's own left side is the near side (and vice versa).
    near_is_left = facing == "left"
    for j, name in enumerate(COCO_KEYPOINT_NAMES[1:], start=1):
        part = name.split("_", 1)[1]
        own_left = name.startswith("left")
        near = own_left == near_is_left
        span, y = rows[part]
        if part == "eye":
            x = cx + toward * 0.045 * hp
        elif part == "ear":
            x = cx - toward * 0.005 * hp
        elif part in ("elbow", "wrist"):
            x = (
                cx
                + toward * (0.02 if part == "elbow" else 0.05) * hp
                + (0.01 if near else -0.01) * hp
            )
        else:  # shoulders, hips, knees, ankles: nearly overlapping (a small turn toward the camera)
            x = cx + (0.012 if own_left else -0.012) * hp * (1 if facing == "left" else -1)
        if part in ("eye", "ear"):
            v = 2 if near else 0
        else:
            v = 2 if near else 1
        kp[j] = (x, top + y * hp, v) if v else (0.0, 0.0, 0.0)
    kp[0] = (cx + toward * 0.075 * hp, top + 0.08 * hp, 2)
    return kp


def _draw_person(hp: float, facing: str, color, rng) -> tuple[_Canvas, np.ndarray]:
    w = 0.5 * hp
    c = _Canvas(w, hp)
    cx, top = c.w / 2.0, 0.0
    kp = _person_keypoints(hp, cx, top, facing)
    # Full joint positions for drawing (hidden face points still have a place on the figure).
    geo = _person_keypoints(hp, cx, top, "toward" if facing == "away" else facing)
    if facing == "away":
        geo[1:, 0] = 2 * cx - geo[1:, 0]
    if facing in ("left", "right"):
        toward = -1.0 if facing == "left" else 1.0
        for j in (1, 2, 3, 4):  # hidden face points: put them on the head for drawing only
            geo[j, :2] = (cx + toward * 0.03 * hp, top + 0.07 * hp)
    P = lambda j: (float(geo[j, 0]), float(geo[j, 1]))
    skin, hair = (224, 172, 140), _jitter((60, 40, 25), rng, 20)
    trousers = _jitter((50, 50, 90), rng, 25)
    for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
        c.line([P(hip), P(knee), P(ankle)], trousers, 0.065 * hp)
    sh_x = sorted([geo[5, 0], geo[6, 0]])
    half = max((sh_x[1] - sh_x[0]) / 2, 0.065 * hp)
    mid = (sh_x[0] + sh_x[1]) / 2
    c.rect([mid - half, geo[5, 1] - 0.01 * hp, mid + half, geo[11, 1] + 0.02 * hp], color)
    for sh, el, wr in ((5, 7, 9), (6, 8, 10)):
        c.line([P(sh), P(el), P(wr)], color, 0.045 * hp)
    r = 0.065 * hp
    hx = cx + (0.0 if facing in ("toward", "away") else (-1 if facing == "left" else 1) * 0.01 * hp)
    hy = top + 0.075 * hp
    c.line([(cx, hy + r * 0.8), (cx, geo[5, 1])], skin, 0.04 * hp)  # neck
    if facing == "away":
        c.ellipse([hx - r, hy - r, hx + r, hy + r], hair)
    else:
        c.ellipse([hx - r, hy - r, hx + r, hy + r], skin)
        if facing == "toward":
            c.paint([hx - r, hy - r, hx + r, hy - 0.4 * r], hair)
            for j in (1, 2):
                ex, ey = kp[j, :2]
                c.paint(
                    [ex - 0.012 * hp, ey - 0.008 * hp, ex + 0.012 * hp, ey + 0.008 * hp],
                    (20, 20, 20),
                )
        else:
            back = -1 if facing == "right" else 1  # hair on the back of the head
            x0, x1 = sorted([hx, hx + back * r])
            c.paint([x0, hy - r, x1, hy + 0.3 * r], hair)
            nx, ny = kp[0, :2]
            c.polygon([(hx, ny - 0.02 * hp), (nx, ny), (hx, ny + 0.015 * hp)], skin)
            near_eye = 1 if facing == "left" else 2
            ex, ey = kp[near_eye, :2]
            c.paint(
                [ex - 0.01 * hp, ey - 0.008 * hp, ex + 0.01 * hp, ey + 0.008 * hp], (20, 20, 20)
            )
    return c, kp


def _draw_thing(name: str, h: float, w: float, color, rng) -> _Canvas:
    """A recognisable flat silhouette for each non-person category, filling (w, h)."""
    c = _Canvas(w, h)
    W, H = c.w - 1, c.h - 1
    dark = tuple(int(v * 0.55) for v in color)
    if name == "chair":
        leg = max(W * 0.08, 1)
        c.rect([0, 0, W * 0.18, H * 0.6], color)  # back
        c.rect([0, H * 0.5, W, H * 0.62], color)  # seat
        for x in (0, W - leg):
            c.rect([x, H * 0.6, x + leg, H], dark)
    elif name == "table":
        c.rect([0, 0, W, H * 0.12], color)
        leg = max(W * 0.05, 1)
        for x in (W * 0.06, W * 0.94 - leg):
            c.rect([x, H * 0.1, x + leg, H], dark)
    elif name == "car":
        c.polygon([(W * 0.22, H * 0.42), (W * 0.32, 0), (W * 0.7, 0), (W * 0.82, H * 0.42)], color)
        c.rect([0, H * 0.38, W, H * 0.85], color)
        c.paint([W * 0.36, H * 0.07, W * 0.66, H * 0.36], (190, 220, 240))
        for x in (W * 0.12, W * 0.68):
            c.ellipse([x, H * 0.62, x + W * 0.2, H], (25, 25, 25))
    elif name == "cup":
        c.rect([0, 0, W * 0.75, H], color)
        c.line([(W * 0.75, H * 0.25), (W, H * 0.4), (W * 0.75, H * 0.7)], color, W * 0.1)
    elif name == "bottle":
        c.rect([W * 0.35, 0, W * 0.65, H * 0.35], dark)
        c.rect([0, H * 0.3, W, H], color)
    elif name == "dog":
        c.ellipse([W * 0.12, H * 0.2, W * 0.82, H * 0.65], color)  # body
        c.ellipse([W * 0.68, 0, W, H * 0.38], color)  # head
        for x in (W * 0.2, W * 0.32, W * 0.6, W * 0.7):
            c.rect([x, H * 0.5, x + W * 0.07, H], dark)
        c.line([(W * 0.15, H * 0.35), (0, H * 0.1)], color, H * 0.06)  # tail
    elif name == "potted plant":
        c.ellipse([0, 0, W, H * 0.7], color)
        c.polygon(
            [(W * 0.2, H * 0.62), (W * 0.8, H * 0.62), (W * 0.7, H), (W * 0.3, H)], (170, 90, 50)
        )
    elif name == "lamp":
        c.polygon([(W * 0.2, 0), (W * 0.8, 0), (W, H * 0.25), (0, H * 0.25)], color)
        c.rect([W * 0.45, H * 0.25, W * 0.55, H * 0.95], dark)
        c.ellipse([W * 0.2, H * 0.9, W * 0.8, H], dark)
    elif name == "book":
        c.rect([0, 0, W, H], color)
        c.paint([0, 0, W * 0.15, H], dark)
    else:  # pragma: no cover - the vocabulary is fixed above
        raise ValueError(f"no drawing for category {name!r}")
    return c


# --- scene sampling ----------------------------------------------------------------------
def _place(z: float, x_centre: float, cam: _Camera, canvas: _Canvas) -> tuple[int, int]:
    """Top-left of a patch whose bottom rests on the floor at depth ``z``."""
    foot = cam.foot_y(z)
    return round(x_centre - canvas.w / 2), round(foot - canvas.h)


def _x_centre(rng: np.random.Generator, cam: _Camera, width_px: float) -> float:
    """Mostly inside the frame; ~15% straddle the left/right border (truncated objects)."""
    if rng.random() < 0.15:
        edge = 0.0 if rng.random() < 0.5 else float(cam.width)
        return edge + rng.uniform(-0.3, 0.3) * width_px
    lo, hi = width_px / 2, cam.width - width_px / 2
    return float(rng.uniform(lo, hi)) if hi > lo else cam.width / 2


def _make_object(
    name: str, cam: _Camera, rng: np.random.Generator, z: float | None = None
) -> _Object:
    cat = CATEGORY_BY_NAME[name]
    z = float(z if z is not None else round(rng.uniform(*cat.z_range), 2))
    scale = cam.focal / z
    color = _jitter(cat.color, rng)
    facing, kp = None, None
    if name == "person":
        facing = FACINGS[int(rng.integers(len(FACINGS)))]
        canvas, kp = _draw_person(
            cat.height_m * scale * rng.uniform(0.92, 1.08), facing, color, rng
        )
    else:
        s = rng.uniform(0.85, 1.15)
        canvas = _draw_thing(name, cat.height_m * scale * s, cat.width_m * scale * s, color, rng)
    x0, y0 = _place(z, _x_centre(rng, cam, canvas.w), cam, canvas)
    rgb, mask = canvas.arrays()
    if kp is not None:
        kp = kp.copy()
        vis = kp[:, 2] > 0
        kp[vis, 0] += x0
        kp[vis, 1] += y0
    return _Object(name, z, x0, y0, rgb, mask, facing=facing, keypoints=kp)


def _make_crowd(name: str, cam: _Camera, rng: np.random.Generator) -> _Object:
    """3-5 touching instances at one depth, annotated as one iscrowd=1 group box."""
    cat = CATEGORY_BY_NAME[name]
    z = float(round(rng.uniform(*cat.z_range), 2))
    scale = cam.focal / z
    n = int(rng.integers(3, 6))
    members = [
        _draw_thing(name, cat.height_m * scale, cat.width_m * scale, _jitter(cat.color, rng), rng)
        for _ in range(n)
    ]
    w = sum(m.w for m in members)
    h = max(m.h for m in members)
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    x = 0
    for m in members:
        mr, mm = m.arrays()
        rgb[h - m.h :, x : x + m.w][mm] = mr[mm]
        mask[h - m.h :, x : x + m.w] |= mm
        x += m.w
    xc = float(rng.uniform(w / 2, max(cam.width - w / 2, w / 2 + 1)))
    foot = cam.foot_y(z)
    return _Object(name, z, round(xc - w / 2), round(foot - h), rgb, mask, is_crowd=True)


def _sample_objects(cam: _Camera, rng: np.random.Generator) -> list[_Object]:
    """3..8 objects: usually a person or two, often a repeated category (2-5, for counting),
    sometimes an iscrowd group."""
    total = int(rng.integers(3, 9))
    crowd = rng.random() < 0.2
    names: list[str] = []
    if rng.random() < 0.85:
        names += ["person"] * (2 if rng.random() < 0.25 else 1)
    others = [c.name for c in CATEGORIES if c.name != "person"]
    if rng.random() < 0.75:
        names += [others[int(rng.integers(len(others)))]] * int(rng.integers(2, 6))
    while len(names) < total:
        names.append(others[int(rng.integers(len(others)))])
    objs = [_make_object(n, cam, rng) for n in names[: total - int(crowd)]]
    if crowd:
        objs.append(
            _make_crowd(CROWD_CATEGORIES[int(rng.integers(len(CROWD_CATEGORIES)))], cam, rng)
        )
    return objs


# --- composition -------------------------------------------------------------------------
def _paste_slices(o: _Object, w: int, h: int):
    """(image slice, patch slice) of the part of ``o``'s patch inside a (w, h) image, or None."""
    ph, pw = o.mask.shape
    x0, y0 = max(o.x0, 0), max(o.y0, 0)
    x1, y1 = min(o.x0 + pw, w), min(o.y0 + ph, h)
    if x1 <= x0 or y1 <= y0:
        return None
    img = (slice(y0, y1), slice(x0, x1))
    patch = (slice(y0 - o.y0, y1 - o.y0), slice(x0 - o.x0, x1 - o.x0))
    return img, patch


def _compose_ids(objs: list[_Object], w: int, h: int) -> np.ndarray:
    """Painter's algorithm on an id map (0 = background, k+1 = objs[k]); objs sorted far-to-near."""
    ids = np.zeros((h, w), np.int16)
    for k, o in enumerate(objs):
        sl = _paste_slices(o, w, h)
        if sl is None:
            continue
        img, patch = sl
        ids[img][o.mask[patch]] = k + 1
    return ids


def _measure(objs: list[_Object], ids: np.ndarray) -> np.ndarray:
    """Fill bbox / truncation / visible fraction of each object; returns visible pixel counts."""
    h, w = ids.shape
    visible = np.bincount(ids.ravel(), minlength=len(objs) + 1)[1:]
    for k, o in enumerate(objs):
        total = int(o.mask.sum())
        sl = _paste_slices(o, w, h)
        inside = np.zeros_like(o.mask)
        if sl is not None:
            inside[sl[1]] = o.mask[sl[1]]
        o.visible_fraction = float(visible[k]) / max(total, 1)
        o.is_truncated = int(inside.sum()) < total
        rows, cols = np.nonzero(inside)
        if rows.size:
            o.bbox = (
                float(cols.min() + o.x0),
                float(rows.min() + o.y0),
                float(cols.max() + 1 + o.x0),
                float(rows.max() + 1 + o.y0),
            )
    return visible


def _layout(cam: _Camera, rng: np.random.Generator) -> tuple[list[_Object], np.ndarray]:
    """Sample objects until at least 3 stay visible enough to be annotated."""
    for _ in range(20):
        objs = sorted(_sample_objects(cam, rng), key=lambda o: -o.z)
        ids = _compose_ids(objs, cam.width, cam.height)
        visible = _measure(objs, ids)
        keep = [
            o
            for o, v in zip(objs, visible)
            if v >= MIN_VISIBLE_PX and o.visible_fraction >= MIN_VISIBLE_FRACTION
        ]
        if len(keep) != len(objs):  # removing a hidden object only uncovers those behind it
            objs = keep
            ids = _compose_ids(objs, cam.width, cam.height)
            _measure(objs, ids)
        if len(objs) >= 3:
            return objs, ids
    raise RuntimeError("could not lay out a scene with 3 visible objects")  # pragma: no cover


def _render(
    cam: _Camera, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[_Object], np.ndarray]:
    objs, ids = _layout(cam, rng)
    img = _background(cam, rng)
    depth = cam.background_depth()
    for k, o in enumerate(objs):
        sl = _paste_slices(o, cam.width, cam.height)
        if sl is None:
            continue
        sel = ids[sl[0]] == k + 1
        img[sl[0]][sel] = o.rgb[sl[1]][sel]
        depth[sl[0]][sel] = o.z
    _finish_keypoints(objs, ids)
    return img, depth, objs, ids


def _finish_keypoints(objs: list[_Object], ids: np.ndarray) -> None:
    """COCO visibility: outside the image -> unlabelled (0); covered by a nearer object -> 1."""
    h, w = ids.shape
    for k, o in enumerate(objs):
        if o.keypoints is None:
            continue
        for kp in o.keypoints:
            if kp[2] == 0:
                continue
            x, y = kp[0], kp[1]
            if not (0 <= x < w and 0 <= y < h):
                kp[:] = 0.0
            elif kp[2] == 2 and ids[int(y), int(x)] != k + 1:
                kp[2] = 1


# --- frames ------------------------------------------------------------------------------
def to_raw_boxes(
    boxes: np.ndarray, orientation: int, oriented_w: int, oriented_h: int
) -> np.ndarray:
    """Inverse of ``boxes.orient_boxes``: oriented-frame xyxy boxes -> the stored pixel frame."""
    return orient_boxes(boxes, _INVERSE_TAG[orientation], oriented_w, oriented_h)


def to_raw_points(xy: np.ndarray, orientation: int, oriented_w: int, oriented_h: int) -> np.ndarray:
    return orient_points(xy, _INVERSE_TAG[orientation], oriented_w, oriented_h)


def _orientation_for(i: int, rotated_every: int) -> int:
    if rotated_every <= 0 or (i + 1) % rotated_every:
        return 1
    return ROTATION_TAGS[((i + 1) // rotated_every - 1) % len(ROTATION_TAGS)]


def _save_jpeg(img: np.ndarray, orientation: int, path: Path) -> tuple[int, int]:
    """Write the photo; rotated ones store raw pixels + EXIF tag. Returns the stored (w, h)."""
    im = Image.fromarray(img)
    if orientation == 1:
        im.save(path, "JPEG", quality=90)
    else:
        im = im.transpose(_RAW_TRANSPOSE[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return im.size


# --- public API --------------------------------------------------------------------------
def generate(
    out_dir: str | os.PathLike,
    num_images: int,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    rotated_every: int = 0,
) -> SyntheticPaths:
    """Render ``num_images`` scenes into ``out_dir`` (see the module docstring for the files)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if width < 64 or height < 64:
        raise ValueError(f"images must be at least 64x64, got {width}x{height}")
    out = Path(out_dir)
    images_dir, depth_dir = out / "images", out / "depth"
    for d in (images_dir, depth_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    cam = _Camera(width, height)
    images, anns, kp_anns, gt_rows = [], [], [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, i])
        img, depth, objs, _ = _render(cam, rng)
        image_id = i + 1
        stem = f"{image_id:06d}"
        orientation = _orientation_for(i, rotated_every)
        raw_w, raw_h = _save_jpeg(img, orientation, images_dir / f"{stem}.jpg")
        np.save(depth_dir / f"{stem}.npy", depth.astype(np.float32), allow_pickle=False)
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "width": raw_w, "height": raw_h})
        for k, o in enumerate(objs):
            ann_id = image_id * 100 + k + 1
            raw = to_raw_boxes(np.asarray([o.bbox]), orientation, width, height)[0]
            xywh = [float(raw[0]), float(raw[1]), float(raw[2] - raw[0]), float(raw[3] - raw[1])]
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": CATEGORY_IDS[o.category],
                "bbox": xywh,
                "area": xywh[2] * xywh[3],
                "iscrowd": int(o.is_crowd),
                "isfake": 0,
                "isreflected": 0,
            }
            anns.append(ann)
            kp_flat = None
            if o.keypoints is not None:
                kp = o.keypoints.copy()
                vis = kp[:, 2] > 0
                kp[vis, :2] = to_raw_points(kp[vis, :2], orientation, width, height)
                raw_kp = [round(float(v), 2) for v in kp.ravel()]
                kp_anns.append({**ann, "keypoints": raw_kp, "num_keypoints": int(vis.sum())})
                kp_flat = [float(v) for v in o.keypoints.ravel()]
            gt_rows.append(
                {
                    "image_id": str(image_id),
                    "object_id": str(ann_id),
                    "category": o.category,
                    "bbox_px": list(o.bbox),
                    "true_depth": o.z,
                    "facing": o.facing,
                    "is_truncated": o.is_truncated,
                    "visible_fraction": o.visible_fraction,
                    "is_crowd": o.is_crowd,
                    "keypoints": kp_flat,
                    "file_name": f"{stem}.jpg",
                    "width": width,
                    "height": height,
                    "exif_orientation": orientation,
                }
            )
    categories = [{"id": CATEGORY_IDS[c.name], "name": c.name} for c in CATEGORIES]
    person = {
        "id": CATEGORY_IDS["person"],
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINT_NAMES),
        "skeleton": COCO_SKELETON,
    }
    paths = SyntheticPaths(
        images_dir=str(images_dir),
        annotations=str(out / "annotations.json"),
        depth_dir=str(depth_dir),
        keypoints=str(out / "keypoints.json"),
        ground_truth=str(out / "ground_truth.parquet"),
    )
    Path(paths.annotations).write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories})
    )
    Path(paths.keypoints).write_text(
        json.dumps({"images": images, "annotations": kp_anns, "categories": [person]})
    )
    pq.write_table(pa.Table.from_pylist(gt_rows, schema=GROUND_TRUTH), paths.ground_truth)
    return paths


def _paths_of(out: Path) -> SyntheticPaths:
    return SyntheticPaths(
        images_dir=str(out / "images"),
        annotations=str(out / "annotations.json"),
        depth_dir=str(out / "depth"),
        keypoints=str(out / "keypoints.json"),
        ground_truth=str(out / "ground_truth.parquet"),
    )


def ensure_generated(src, rotated_every: int | None = None) -> SyntheticPaths:
    """Generate the ``synthetic`` source ``src`` once (``src.images`` is the output folder).

    Idempotent: a marker JSON records the parameters and is written last; the scenes are
    regenerated only when it is missing (an interrupted run) or its parameters differ.  A file
    lock makes concurrent callers (Dagster's multiprocess executor) generate once.
    ``rotated_every`` defaults to ``src.rotated_every`` when the config has it, else 0.
    """
    if src.format != "synthetic":
        raise ValueError(f"source {src.name!r} has format {src.format!r}, not 'synthetic'")
    if "://" in src.images and not src.images.startswith("file://"):
        raise ValueError(
            f"synthetic source {src.name!r}: images must be a local folder, got {src.images!r}"
        )
    out = Path(src.images.removeprefix("file://"))
    if rotated_every is None:
        rotated_every = int(getattr(src, "rotated_every", 0) or 0)
    params = {
        "generator_version": GENERATOR_VERSION,
        "num_images": int(src.num_images or DEFAULT_NUM_IMAGES),
        "seed": int(src.seed),
        "width": 640,
        "height": 480,
        "rotated_every": rotated_every,
    }
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists() and json.loads(marker.read_text()) == params:
                return _paths_of(out)
            if marker.exists():
                marker.unlink()
            paths = generate(
                out,
                params["num_images"],
                params["seed"],
                params["width"],
                params["height"],
                rotated_every,
            )
            tmp = out / f".{MARKER}.tmp"
            tmp.write_text(json.dumps(params, sort_keys=True))
            os.replace(tmp, marker)
            return paths
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
