"""Hand-built scene tables with exact positions, depths and facings (ground truth for tests)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000

IMAGE_DEFAULTS = {"source": "o365", "shard": "00000", "width": 800, "height": 600}
CATEGORIES = (
    "Person",
    "Chair",
    "Car",
    "Cup",
    "Dining Table",
    "TV",
    "Bottle",
    "Dog",
    "Glass",
    "Bench",
)


def obj(object_id, category, bbox_px, depth=None, **kw) -> dict:
    """One object; ``depth`` is the metric median depth (reliable unless told otherwise)."""
    d = {
        "object_id": str(object_id),
        "category": category,
        "bbox_px": None if bbox_px is None else [float(v) for v in bbox_px],
    }
    if depth is not None:
        d.update(
            depth_median=float(depth),
            depth_kind="metric",
            depth_reliable=True,
            depth_provenance="given",
        )
    d.update(kw)
    return d


def image(objects: list[dict], **fields) -> dict:
    """An image with its own fields (width, height, image_count, ...) and objects."""
    return {"fields": fields, "objects": objects}


def scene(images: dict, **image_kw) -> pa.Table:
    """Scene table of ``{image_id: [objects] or image(...)}`` (fields from IMAGE_DEFAULTS/image_kw)."""
    rows = []
    for image_id, spec in images.items():
        objs, fields = (spec["objects"], spec["fields"]) if isinstance(spec, dict) else (spec, {})
        im = {**IMAGE_DEFAULTS, **image_kw, **fields}
        for o in objs:
            r = {
                **im,
                "image_id": image_id,
                "file_name": f"images/{image_id}.jpg",
                "image_uri": f"file:///data/{im['source']}/images/{image_id}.jpg",
                "is_crowd": False,
                "is_group": False,
                "is_depiction": False,
                "is_occluded": False,
                "is_truncated": False,
                "is_fake": False,
                "is_reflected": False,
                "score": 1.0,
                "provenance": "annotation",
                "mask_box_iou": 1.0,
            }
            r.update(o)
            if r.get("bbox_px") is not None:
                r["bbox_1000"] = px_to_1000([r["bbox_px"]], r["width"], r["height"])[0].tolist()
            rows.append(r)
    unknown = {k for r in rows for k in r} - set(schemas.SCENE.names)
    assert not unknown, f"not SCENE columns: {unknown}"
    return pa.Table.from_pylist(rows, schema=schemas.SCENE)


def design_example() -> pa.Table:
    """DESIGN.md's illustration: two chairs and a person facing the camera, 800x600."""
    return scene(
        {
            "000123": [
                obj(51, "Chair", (80, 300, 240, 540), depth=2.0),
                obj(52, "Chair", (560, 330, 680, 510), depth=5.0),
                obj(
                    53,
                    "Person",
                    (320, 120, 480, 560),
                    depth=3.0,
                    facing="toward",
                    facing_confidence=0.9,
                ),
            ]
        }
    )


def random_scene(
    n_images: int, seed: int = 0, source: str = "o365", disparity_every: int = 5
) -> pa.Table:
    """Random images with exact geometry: 1-9 objects each, a few flagged boxes, people facing.

    Every ``disparity_every``-th image carries disparity (larger = closer, range 0..5) instead
    of metres.  ``true_depth`` of object ``o`` is ``1/disparity`` there.
    """
    rng = np.random.default_rng(seed)
    images = {}
    for k in range(n_images):
        w, h = int(rng.integers(300, 1600)), int(rng.integers(300, 1200))
        disp = bool(disparity_every) and k % disparity_every == 0
        objs = []
        for j in range(int(rng.integers(1, 10))):
            x1, y1 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
            x2, y2 = min(w, x1 + rng.uniform(5, w * 0.5)), min(h, y1 + rng.uniform(5, h * 0.5))
            cat = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))]
            d = float(np.exp(rng.normal(1.0, 0.7)))
            if disp:
                extra = {
                    "depth_median": 1.0 / d,
                    "depth_kind": "disparity",
                    "image_depth_min": 0.0,
                    "image_depth_max": 5.0,
                    "depth_reliable": True,
                }
            else:
                extra = {
                    "depth_median": d,
                    "depth_kind": "metric",
                    "depth_reliable": bool(rng.random() < 0.95),
                }
            if cat == "Person":
                extra.update(
                    facing=str(rng.choice(["toward", "away", "left", "right", "unknown"])),
                    facing_confidence=float(rng.uniform(0.3, 1.0)),
                )
            r = rng.random()
            extra.update(
                is_group=bool(r < 0.03),
                is_crowd=bool(0.03 <= r < 0.05),
                is_depiction=bool(0.05 <= r < 0.07),
                is_truncated=bool(rng.random() < 0.1),
            )
            objs.append(obj(f"{k}_{j}", cat, (x1, y1, x2, y2), **extra))
        images[f"{k:06d}"] = image(objs, width=w, height=h, source=source)
    return scene(images)


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    """Same rows in another order, in several chunks (as a different reader would give them)."""
    rng = np.random.default_rng(seed)
    t = table.take(pa.array(rng.permutation(table.num_rows)))
    cut = table.num_rows // 3
    return pa.concat_tables([t.slice(0, cut), t.slice(cut)])
