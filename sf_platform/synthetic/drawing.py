"""Drawing: flat, recognisable silhouettes of each category (RGB patch + shape mask), and person
figures whose 17 COCO keypoints follow their facing."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from sf_platform.synthetic.vocabulary import COCO_KEYPOINT_NAMES


def jitter(
    color: tuple[int, int, int], rng: np.random.Generator, amount: int = 35
) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


class Canvas:
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


def draw_person(hp: float, facing: str, color, rng) -> tuple[Canvas, np.ndarray]:
    w = 0.5 * hp
    c = Canvas(w, hp)
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
    skin, hair = (224, 172, 140), jitter((60, 40, 25), rng, 20)
    trousers = jitter((50, 50, 90), rng, 25)
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


def draw_thing(name: str, h: float, w: float, color, rng) -> Canvas:
    """A recognisable flat silhouette for each non-person category, filling (w, h)."""
    c = Canvas(w, h)
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

