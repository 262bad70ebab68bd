"""Person keypoints (COCO-17) and the way each person faces.

- Given keypoints (``objects.keypoints`` not null: COCO person keypoints, synthetic scenes)
  pass through with provenance ``"given"``; no model is loaded when every person has them.
- Otherwise ``VitPoseForPoseEstimation`` (top-down: one crop per person box, 256x192 for the
  real models).  Batches are made of person crops, not images, so a crowded image does not
  blow up a batch; images are read and cropped in the prefetch threads.
- ``facing`` / ``facing_confidence`` from the keypoints (``core.facing``).

Which objects are persons: category in ``PERSON_CATEGORIES`` (case-insensitive), with a box,
and not a crowd / group box (one skeleton for a crowd box is meaningless).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.facing import facing_from_keypoints
from sf_platform.models.batching import ensure_rgb, run_pipeline
from sf_platform.models.device import resolve_runtime
from sf_platform.models.loading import base_meta, load_transformers, model_ref

PERSON_CATEGORIES = frozenset({"person", "man", "woman", "boy", "girl", "child", "human"})

LoadImage = Callable[[dict], np.ndarray]


def is_person(obj: dict) -> bool:
    return str(obj.get("category") or "").strip().lower() in PERSON_CATEGORIES


def pose_row(obj: dict, keypoints, provenance: str) -> dict:
    kp = [float(v) for v in np.asarray(keypoints, dtype=np.float32).reshape(-1)]
    if len(kp) != 51:
        raise ValueError(f"object {obj['object_id']!r}: keypoints must be 17 x (x, y, score), got {len(kp)} values")
    facing, conf = facing_from_keypoints(kp, box=obj.get("bbox_px"))
    return {k: obj[k] for k in ("source", "shard", "object_id", "image_id")} | {
        "keypoints": kp, "facing": facing, "facing_confidence": conf, "pose_provenance": provenance,
    }


def run_poses(
    images: pa.Table, objects: pa.Table, cfg: ModelsConfig, load_image: LoadImage, *, tiny_dir: str | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """POSES table (one row per person with given or estimated keypoints) and the op's metadata."""
    objs = objects.to_pylist()
    given = [o for o in objs if o.get("keypoints") is not None]
    todo = [
        o for o in objs
        if o.get("keypoints") is None and is_person(o) and o.get("bbox_px") is not None
        and not o.get("is_crowd") and not o.get("is_group")
    ]
    rows = [pose_row(o, o["keypoints"], "given") for o in given]
    loaded = runtime = runner = None
    if todo:
        runtime = resolve_runtime(cfg.device)
        ref, tiny = model_ref(cfg, "pose", tiny_dir)
        from transformers import AutoProcessor, VitPoseForPoseEstimation

        loaded = load_transformers(VitPoseForPoseEstimation, AutoProcessor, ref, op="pose", runtime=runtime,
                                   revision=cfg.pose.revision, tiny=tiny)
        estimated, runner = estimate(loaded, runtime, images, todo, load_image, cfg.pose.batch_size)
        rows += estimated
    table = pa.Table.from_pylist(rows, schema=schemas.POSES)
    meta = base_meta("pose", loaded, runtime, cfg) | (runner.meta() if runner else {"batch_size": cfg.pose.batch_size})
    if loaded is None and given:
        meta["model"] = "given"
    facings = table.column("facing").to_pylist()
    meta["counts"] = {"given": len(given), "estimated": len(todo), "persons": table.num_rows} | {
        f"facing_{f}": facings.count(f) for f in ("toward", "away", "left", "right", "unknown")
    }
    return table, meta


def estimate(loaded, runtime, images: pa.Table, persons: list[dict], load_image: LoadImage, batch_size: int):
    """ViTPose keypoints for ``persons`` (objects with boxes) -> (POSES rows, batch runner)."""
    processor, model = loaded.processor, loaded.model
    image_rows = {r["image_id"]: r for r in images.to_pylist()}
    by_image: dict[str, list[dict]] = defaultdict(list)
    for o in persons:
        if o["image_id"] not in image_rows:
            raise ValueError(f"object {o['object_id']!r} refers to image {o['image_id']!r} not in the images table")
        by_image[o["image_id"]].append(o)

    def prepare(image_id: str) -> list[dict]:
        img = ensure_rgb(load_image(image_rows[image_id]), image_id)
        objs = by_image[image_id]
        xywh = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in (o["bbox_px"] for o in objs)]
        crops = processor(images=img, boxes=[xywh], return_tensors="pt")["pixel_values"]
        return [{"obj": o, "box": bx, "pixels": c} for o, bx, c in zip(objs, xywh, crops)]

    @torch.inference_mode()
    def forward(batch: list[dict]) -> list[dict]:
        x = torch.stack([b["pixels"] for b in batch]).to(runtime.device, runtime.dtype)
        out = model(pixel_values=x)
        out.heatmaps = out.heatmaps.float()
        poses = processor.post_process_pose_estimation(out, boxes=[[b["box"]] for b in batch])
        res = []
        for b, p in zip(batch, poses):
            kp = torch.cat([p[0]["keypoints"], p[0]["scores"][:, None]], dim=1).numpy()
            res.append(pose_row(b["obj"], kp, loaded.model_id))
        return res

    return run_pipeline(sorted(by_image), prepare, forward, batch_size)
