"""Boxes for point-only objects (PixMo: a category label and one point per instance, no box).

An open-vocabulary detector (OWLv2, ``Owlv2ForObjectDetection``) is queried with the labelled
category of each image; every labelled point is then matched to one detected box that
contains it.  Matching is greedy by detector score over all (point, box) pairs of one
(image, category): the best-scoring box containing a point explains it, and a box explains at
most one point (two points of one label are two instances).  A point that no box contains
stays a point-only object: a made-up box would be worse than none.

Objects that already have boxes pass through unchanged; images with no point-only objects are
never loaded, and when no image has any, the model is not even loaded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.models.batching import BatchRunner, run_batches
from sf_platform.models.device import Runtime
from sf_platform.models.inputs import (
    BILINEAR,
    load_for_model,
    normalize,
    prepare_input,
    resize,
    stacked_inputs,
)
from sf_platform.models.loading import LoadedModel, load_transformers, model_ref
from sf_platform.models.op import LoadImage, ModelOp, Plan, group_by_image

# OWLv2's own default post-processing threshold.  Low on purpose: the labelled point inside the
# box is the main evidence, the detector score only ranks boxes that contain it.
DETECTION_THRESHOLD = 0.1
QUERY_TEMPLATE = "a photo of a {}"


def _is_point_only(row: dict) -> bool:
    return row.get("bbox_px") is None and bool(row.get("points"))


def owlv2_pixels(images: list[torch.Tensor], size: tuple[int, int], mean, std, device) -> torch.Tensor:
    """OWLv2's preprocessing on ``device``: zero-pad bottom/right to a square, antialiased
    resize to ``size``, [0,1] scale, normalise -> ``[B, 3, H, W]`` float32.

    ``images``: ``H x W x 3`` uint8 tensors.  Same steps as ``Owlv2ImageProcessor`` (which
    pads before resizing, so boxes come back relative to the padded square), but as tensor ops
    on the accelerator: the processor's Gaussian antialiasing costs ~100 ms of CPU per photo,
    more than the model's forward on a GPU.  Padding and resizing run on uint8 (black = 0
    either way): a quarter of the bytes of float, and the CPU's uint8 resize kernels.
    """
    out = []
    for img in images:
        x = img.to(device).permute(2, 0, 1)
        h, w = x.shape[-2:]
        s = max(h, w)
        if (h, w) != (s, s):
            x = F.pad(x, (0, s - w, 0, s - h), value=0)
        out.append(normalize(resize(x, size, BILINEAR), mean, std))
    return torch.stack(out)


def owlv2_need(size: tuple[int, int]):
    """``need`` for :func:`sf_platform.models.inputs.load_for_model`: the photo's padded square
    shrinks to ``size``, so the photo itself to ``size`` times (side / longest side)."""

    def need(width: int, height: int) -> tuple[int, int]:
        s = max(width, height)
        return math.ceil(width * size[1] / s), math.ceil(height * size[0] / s)

    return need


def match_points_to_boxes(points: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> list[int | None]:
    """For each point ``[P, 2]``, the index of the box ``[B, 4]`` that explains it, or None.

    Greedy by score: every (point, box) pair with the point inside the box, best score first;
    a point takes one box and a box one point.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out: list[int | None] = [None] * len(points)
    if len(points) == 0 or len(boxes) == 0:
        return out
    inside = (
        (points[:, None, 0] >= boxes[None, :, 0]) & (points[:, None, 0] <= boxes[None, :, 2])
        & (points[:, None, 1] >= boxes[None, :, 1]) & (points[:, None, 1] <= boxes[None, :, 3])
    )
    pairs = sorted(zip(*np.nonzero(inside)), key=lambda pb: (-float(scores[pb[1]]), pb[0], pb[1]))
    used: set[int] = set()
    for p, b in pairs:
        if out[p] is None and b not in used:
            out[p] = int(b)
            used.add(int(b))
    return out


class DetectionOp(ModelOp):
    """OWLv2 boxes for point-only objects; every other object passes through."""

    op = "detection"

    @classmethod
    def output_settings(cls, cfg: ModelsConfig) -> dict[str, Any]:
        return super().output_settings(cfg) | {"score_threshold": DETECTION_THRESHOLD, "query": QUERY_TEMPLATE}

    def __init__(self, cfg: ModelsConfig, load_image: LoadImage, *, score_threshold: float = DETECTION_THRESHOLD,
                 **kw):
        super().__init__(cfg, load_image, **kw)
        self.score_threshold = score_threshold

    def plan(self, images: pa.Table, objects: pa.Table | None) -> Plan:
        rows = objects.to_pylist()
        todo = [r for r in rows if _is_point_only(r)]
        image_rows, by_image = group_by_image(todo, images)
        counts = {"objects_in": len(rows), "point_objects": len(todo), "points": sum(len(r["points"]) for r in todo)}
        return Plan(sorted(by_image), {"objects": objects, "rows": rows, "image_rows": image_rows,
                                       "by_image": by_image, "counts": counts})

    def load(self, runtime: Runtime) -> LoadedModel:
        ref, tiny = model_ref(self.cfg, "detection", self.tiny_dir)
        from transformers import AutoProcessor, Owlv2ForObjectDetection

        return load_transformers(Owlv2ForObjectDetection, AutoProcessor, ref, op="detection", runtime=runtime,
                                 revision=self.cfg.detection.revision, tiny=tiny)

    def run_batches(self, plan: Plan, loaded: LoadedModel, runtime: Runtime) -> tuple[list, BatchRunner]:
        processor, model = loaded.processor, loaded.model
        image_rows, by_image = plan.data["image_rows"], plan.data["by_image"]
        ip = processor.image_processor
        side = (ip.size["height"], ip.size["width"])
        need = owlv2_need(side)
        load_image, threshold = self.load_image, self.score_threshold

        def prepare(image_id: str) -> dict:
            image = load_for_model(load_image, image_rows[image_id], need)
            queries = sorted({r["category"] for r in by_image[image_id]})
            item = {"image_id": image_id, "queries": queries, "image": torch.from_numpy(image.pixels),
                    "size": (image.height, image.width)}
            return prepare_input(item, to_input, runtime.device)

        def to_input(item: dict, device: torch.device) -> torch.Tensor:
            return owlv2_pixels([item["image"]], side, ip.image_mean, ip.image_std, device)[0]

        @torch.inference_mode()
        def forward(batch: list[dict]) -> list[dict]:
            text = [[QUERY_TEMPLATE.format(q.lower()) for q in b["queries"]] for b in batch]
            enc = processor(text=text, truncation=True, return_tensors="pt")
            out = model(
                input_ids=enc["input_ids"].to(runtime.device),
                attention_mask=enc["attention_mask"].to(runtime.device),
                pixel_values=stacked_inputs(batch, to_input, runtime.device, runtime.dtype),
            )
            out.logits, out.pred_boxes = out.logits.float(), out.pred_boxes.float()
            dets = processor.post_process_grounded_object_detection(
                out, threshold=threshold, target_sizes=[tuple(b["size"]) for b in batch]
            )
            res = []
            for b, d in zip(batch, dets):
                keep = d["labels"] < len(b["queries"])  # drop the padding queries of shorter lists
                boxes = d["boxes"][keep].cpu().numpy()
                h, w = b["size"]
                boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)  # OWLv2 boxes may reach past the image
                boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
                res.append({
                    "image_id": b["image_id"],
                    "boxes": boxes,
                    "scores": d["scores"][keep].cpu().numpy(),
                    "labels": [b["queries"][i] for i in d["labels"][keep].tolist()],
                })
            return res

        return run_batches(plan.todo, prepare, forward, self.cfg.detection.batch_size)

    def summary(self, meta: dict[str, Any]) -> str:
        n = meta["counts"]
        return (f"detections: {n['point_objects']} point-only objects on {n['images']} images, "
                f"{n['points_matched']}/{n['points']} points boxed")

    def attach(self, plan: Plan, outputs: list, loaded: LoadedModel | None) -> tuple[pa.Table, dict[str, Any]]:
        counts = plan.data["counts"]
        if loaded is None:
            return schemas.conform(plan.data["objects"], schemas.OBJECTS), {
                "counts": counts | {"points_matched": 0, "images": 0}}
        provenance = f"detector:{loaded.model_id}"
        by_image = plan.data["by_image"]
        replaced = _assign(by_image, {o["image_id"]: o for o in outputs}, plan.data["image_rows"], provenance)
        new_rows: list[dict] = []
        for r in plan.data["rows"]:
            new_rows.extend(replaced.get(id(r), [r]))
        matched = sum(1 for r in new_rows if r["provenance"] == provenance)
        counts = counts | {
            "images": len(by_image),
            "detections": int(sum(len(o["scores"]) for o in outputs)),
            "points_matched": matched,
            "points_unmatched": counts["points"] - matched,
            "objects_out": len(new_rows),
        }
        meta = {"score_threshold": self.score_threshold, "counts": counts}
        return pa.Table.from_pylist(new_rows, schema=schemas.OBJECTS), meta


def run_detections(
    images: pa.Table,
    objects: pa.Table,
    cfg: ModelsConfig,
    load_image: LoadImage,
    *,
    score_threshold: float = DETECTION_THRESHOLD,
    tiny_dir: str | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Full OBJECTS table with detector boxes for point-only objects, and the op's metadata."""
    return DetectionOp(cfg, load_image, score_threshold=score_threshold, tiny_dir=tiny_dir).run(images, objects)


def _assign(by_image, detections, image_rows, provenance) -> dict[int, list[dict]]:
    """Replacement rows for each point-only object (keyed by ``id(row)``)."""
    replaced: dict[int, list[dict]] = {}
    for image_id, objs in by_image.items():
        det = detections[image_id]
        w, h = image_rows[image_id]["width"], image_rows[image_id]["height"]
        for category in {o["category"] for o in objs}:
            owners = [(o, k) for o in objs if o["category"] == category for k in range(len(o["points"]))]
            pts = np.array([[o["points"][k]["x"], o["points"][k]["y"]] for o, k in owners])
            sel = np.array([lab == category for lab in det["labels"]], dtype=bool)
            boxes, scores = det["boxes"][sel].reshape(-1, 4), det["scores"][sel]
            match = match_points_to_boxes(pts, boxes, scores)
            for o in objs:
                if o["category"] == category:
                    replaced[id(o)] = []
            unmatched: dict[int, list] = defaultdict(list)
            for (o, k), b in zip(owners, match):
                if b is None:
                    unmatched[id(o)].append(o["points"][k])
                    continue
                box = [float(v) for v in boxes[b]]
                replaced[id(o)].append(o | {
                    "object_id": f"{o['object_id']}#{k}",
                    "bbox_px": box,
                    "bbox_1000": px_to_1000(np.array([box]), w, h)[0].tolist(),
                    "points": [o["points"][k]],
                    "score": float(scores[b]),
                    "provenance": provenance,
                })
            for o in objs:
                if o["category"] == category and unmatched[id(o)]:
                    replaced[id(o)].append(o | {"points": unmatched[id(o)]})
    return replaced
