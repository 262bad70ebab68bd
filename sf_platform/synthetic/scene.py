"""Scene sampling and composition: objects placed on the floor at known depths, painted far to
near (nearer objects occlude farther ones), with the exact depth map and visibility of each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sf_platform.synthetic.camera import Camera, background
from sf_platform.synthetic.drawing import Canvas, draw_person, draw_thing, jitter
from sf_platform.synthetic.vocabulary import CATEGORIES, CATEGORY_BY_NAME, CROWD_CATEGORIES, FACINGS

# An object is annotated only if at least this share of its shape is visible (after
# occlusion and the image border) and at least MIN_VISIBLE_PX pixels show: annotators do not
# box what they cannot see.
MIN_VISIBLE_FRACTION = 0.2
MIN_VISIBLE_PX = 40


@dataclass
class SceneObject:
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



def _place(z: float, x_centre: float, cam: Camera, canvas: Canvas) -> tuple[int, int]:
    """Top-left of a patch whose bottom rests on the floor at depth ``z``."""
    foot = cam.foot_y(z)
    return round(x_centre - canvas.w / 2), round(foot - canvas.h)


def _x_centre(rng: np.random.Generator, cam: Camera, width_px: float) -> float:
    """Mostly inside the frame; ~15% straddle the left/right border (truncated objects)."""
    if rng.random() < 0.15:
        edge = 0.0 if rng.random() < 0.5 else float(cam.width)
        return edge + rng.uniform(-0.3, 0.3) * width_px
    lo, hi = width_px / 2, cam.width - width_px / 2
    return float(rng.uniform(lo, hi)) if hi > lo else cam.width / 2


def _make_object(
    name: str, cam: Camera, rng: np.random.Generator, z: float | None = None
) -> SceneObject:
    cat = CATEGORY_BY_NAME[name]
    z = float(z if z is not None else round(rng.uniform(*cat.z_range), 2))
    scale = cam.focal / z
    color = jitter(cat.color, rng)
    facing, kp = None, None
    if name == "person":
        facing = FACINGS[int(rng.integers(len(FACINGS)))]
        canvas, kp = draw_person(
            cat.height_m * scale * rng.uniform(0.92, 1.08), facing, color, rng
        )
    else:
        s = rng.uniform(0.85, 1.15)
        canvas = draw_thing(name, cat.height_m * scale * s, cat.width_m * scale * s, color, rng)
    x0, y0 = _place(z, _x_centre(rng, cam, canvas.w), cam, canvas)
    rgb, mask = canvas.arrays()
    if kp is not None:
        kp = kp.copy()
        vis = kp[:, 2] > 0
        kp[vis, 0] += x0
        kp[vis, 1] += y0
    return SceneObject(name, z, x0, y0, rgb, mask, facing=facing, keypoints=kp)


def _make_crowd(name: str, cam: Camera, rng: np.random.Generator) -> SceneObject:
    """3-5 touching instances at one depth, annotated as one iscrowd=1 group box."""
    cat = CATEGORY_BY_NAME[name]
    z = float(round(rng.uniform(*cat.z_range), 2))
    scale = cam.focal / z
    n = int(rng.integers(3, 6))
    members = [
        draw_thing(name, cat.height_m * scale, cat.width_m * scale, jitter(cat.color, rng), rng)
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
    return SceneObject(name, z, round(xc - w / 2), round(foot - h), rgb, mask, is_crowd=True)


def _sample_objects(cam: Camera, rng: np.random.Generator) -> list[SceneObject]:
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


def paste_slices(o: SceneObject, w: int, h: int):
    """(image slice, patch slice) of the part of ``o``'s patch inside a (w, h) image, or None."""
    ph, pw = o.mask.shape
    x0, y0 = max(o.x0, 0), max(o.y0, 0)
    x1, y1 = min(o.x0 + pw, w), min(o.y0 + ph, h)
    if x1 <= x0 or y1 <= y0:
        return None
    img = (slice(y0, y1), slice(x0, x1))
    patch = (slice(y0 - o.y0, y1 - o.y0), slice(x0 - o.x0, x1 - o.x0))
    return img, patch


def _compose_ids(objs: list[SceneObject], w: int, h: int) -> np.ndarray:
    """Painter's algorithm on an id map (0 = background, k+1 = objs[k]); objs sorted far-to-near."""
    ids = np.zeros((h, w), np.int16)
    for k, o in enumerate(objs):
        sl = paste_slices(o, w, h)
        if sl is None:
            continue
        img, patch = sl
        ids[img][o.mask[patch]] = k + 1
    return ids


def _measure(objs: list[SceneObject], ids: np.ndarray) -> np.ndarray:
    """Fill bbox / truncation / visible fraction of each object; returns visible pixel counts."""
    h, w = ids.shape
    visible = np.bincount(ids.ravel(), minlength=len(objs) + 1)[1:]
    for k, o in enumerate(objs):
        total = int(o.mask.sum())
        sl = paste_slices(o, w, h)
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


def _layout(cam: Camera, rng: np.random.Generator) -> tuple[list[SceneObject], np.ndarray]:
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


def render(
    cam: Camera, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[SceneObject], np.ndarray]:
    objs, ids = _layout(cam, rng)
    img = background(cam, rng)
    depth = cam.background_depth()
    for k, o in enumerate(objs):
        sl = paste_slices(o, cam.width, cam.height)
        if sl is None:
            continue
        sel = ids[sl[0]] == k + 1
        img[sl[0]][sel] = o.rgb[sl[1]][sel]
        depth[sl[0]][sel] = o.z
    _finish_keypoints(objs, ids)
    return img, depth, objs, ids


def _finish_keypoints(objs: list[SceneObject], ids: np.ndarray) -> None:
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

