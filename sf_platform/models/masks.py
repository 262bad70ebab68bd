"""Object masks: segment-anything (SAM) prompted with each object's box or points, or the box itself.

Backend ``sam``: images go through SAM's heavy image encoder in batches (``batch_size``
images at once), ONCE per image; every object of the image is then decoded from that one
embedding by the light prompt decoder, all boxes of an image together (in chunks of
``DECODE_CHUNK`` to bound memory on crowded images).  Box prompts decode a single mask
(a box is unambiguous); a single point decodes SAM's three candidate masks and keeps the one
with the best predicted IoU (a click is ambiguous: part, object, group), the way SAM's own
predictor is meant to be used; several points of one object are prompted together.

Masks are thresholded in SAM's input frame (long side = encoder size, 1024 for the real
models): SAM's masks are 256x256 logits upsampled, so the original image's resolution adds
no information, only cost.  Areas are scaled back to original pixels.

Backend ``box``: the box is the mask (``mask_pred_iou`` = ``mask_box_iou`` = 1, provenance
``"box"``); point-only objects get no mask row.  Stored per object (see ``mask_bits``): a
32x32 bit grid in the frame box (``mask_frame_px``), area, SAM's predicted IoU and mask-vs-box IoU.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.mask_bits import (
    MASK_GRID,
    full_box_bits,
    grid_from_mask,
    mask_bbox,
    mask_box_iou,
    pack_grid,
)
from sf_platform.models.batching import BatchRunner, run_batches
from sf_platform.models.device import Runtime
from sf_platform.models.inputs import (
    BILINEAR,
    as_chw,
    load_for_model,
    prepare_input,
    resize,
    stacked_inputs,
)
from sf_platform.models.loading import LoadedModel, load_sam, model_ref
from sf_platform.models.op import LoadImage, ModelOp, Plan, group_by_image

DECODE_CHUNK = 64


def _base_row(obj: dict) -> dict:
    return {k: obj[k] for k in ("source", "shard", "object_id", "image_id")}


def box_mask_row(obj: dict) -> dict:
    """The ``box`` backend: the box is the mask."""
    x1, y1, x2, y2 = obj["bbox_px"]
    return _base_row(obj) | {
        "mask_bits": full_box_bits(MASK_GRID), "mask_grid": MASK_GRID, "mask_area": float((x2 - x1) * (y2 - y1)),
        "mask_pred_iou": 1.0, "mask_box_iou": 1.0, "mask_provenance": "box", "mask_frame_px": list(obj["bbox_px"]),
    }


def mask_row(obj: dict, mask: np.ndarray, pred_iou: float, scale: tuple[float, float], provenance: str) -> dict:
    """Summarise one mask given in SAM's input frame (``scale`` = input px per original px, x and y)."""
    sx, sy = scale
    box = obj.get("bbox_px")
    if box is not None:
        frame_in = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]
        box_iou = mask_box_iou(mask, frame_in)
    else:
        frame_in = mask_bbox(mask)
        box_iou = None  # a point prompt has no box to agree with
    if frame_in is None:
        grid, frame_px = np.zeros((MASK_GRID, MASK_GRID), dtype=bool), None
    else:
        grid = grid_from_mask(mask, frame_in, MASK_GRID)
        frame_px = [frame_in[0] / sx, frame_in[1] / sy, frame_in[2] / sx, frame_in[3] / sy]
    return _base_row(obj) | {
        "mask_bits": pack_grid(grid), "mask_grid": MASK_GRID,
        "mask_area": float(np.count_nonzero(mask) / (sx * sy)),
        "mask_pred_iou": float(pred_iou), "mask_box_iou": box_iou, "mask_provenance": provenance,
        "mask_frame_px": frame_px,
    }


def _maskable(obj: dict) -> bool:
    return obj.get("bbox_px") is not None or bool(obj.get("points"))


class MasksOp(ModelOp):
    """SAM masks prompted by each object's box or points (``backend: box``: the box itself)."""

    op = "masks"

    @classmethod
    def output_settings(cls, cfg: ModelsConfig) -> dict[str, Any]:
        if cfg.masks.backend == "box":  # no model: the checkpoint does not change a row
            return {"backend": "box", "mask_grid": MASK_GRID}
        return super().output_settings(cfg) | {"mask_grid": MASK_GRID}

    def plan(self, images: pa.Table, objects: pa.Table | None) -> Plan:
        objs = [o for o in objects.to_pylist() if _maskable(o)]
        counts: dict[str, int] = {"objects": objects.num_rows, "boxed": sum(o["bbox_px"] is not None for o in objs)}
        counts["point_only"] = len(objs) - counts["boxed"]
        if self.cfg.masks.backend == "box":
            return Plan([], {"counts": counts, "rows": [box_mask_row(o) for o in objs if o["bbox_px"] is not None]})
        image_rows, by_image = group_by_image(objs, images)
        return Plan(sorted(by_image), {"counts": counts, "image_rows": image_rows, "by_image": by_image})

    def load(self, runtime: Runtime) -> LoadedModel:
        ref, tiny = model_ref(self.cfg, "masks", self.tiny_dir)
        return load_sam(ref, "tiny" if tiny else self.cfg.masks.model_type, runtime=runtime, tiny=tiny)

    def run_batches(self, plan: Plan, loaded: LoadedModel, runtime: Runtime) -> tuple[list, BatchRunner]:
        tiny = loaded.tiny
        provenance = f"sam:{'tiny' if tiny else self.cfg.masks.model_type}:{loaded.revision.removeprefix('sha256:')}"
        return run_sam(loaded.model, runtime, plan.todo, plan.data["image_rows"], plan.data["by_image"],
                       self.load_image, self.cfg.masks.batch_size, provenance)

    def summary(self, meta: dict[str, Any]) -> str:
        n = meta["counts"]
        return f"masks: {n['masks']} masks for {n['objects']} objects ({meta['backend']})"

    def attach(self, plan: Plan, outputs: list, loaded: LoadedModel | None) -> tuple[pa.Table, dict[str, Any]]:
        backend = self.cfg.masks.backend
        rows = plan.data["rows"] if backend == "box" else [row for rows in outputs for row in rows]
        meta: dict[str, Any] = {"backend": backend, "counts": plan.data["counts"] | {"masks": len(rows)}}
        if backend == "box":
            meta["model"] = "box"
        return pa.Table.from_pylist(rows, schema=schemas.MASKS), meta


def run_masks(
    images: pa.Table, objects: pa.Table, cfg: ModelsConfig, load_image: LoadImage, *, tiny_dir: str | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """MASKS table (one row per maskable object) and the op's metadata."""
    return MasksOp(cfg, load_image, tiny_dir=tiny_dir).run(images, objects)


def sam_pixels(sam, image: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """SAM's input from a uint8 ``[3, H, W]`` image: ``ResizeLongestSide.apply_image`` (an
    antialiased bilinear resize to ``input_size``; PIL's there, torch's uint8 kernel here, on
    the image's device) then ``Sam.preprocess`` (normalise, zero-pad bottom/right to the square)."""
    return sam.preprocess(resize(image, input_size, BILINEAR).contiguous().float())


def run_sam(sam, runtime: Runtime, image_ids: list[str], image_rows: dict[str, dict],
            by_image: dict[str, list[dict]], load_image: LoadImage, batch_size: int,
            provenance: str) -> tuple[list[list[dict]], BatchRunner]:
    """Encode images in batches, decode every object's prompt; returns (mask rows per image,
    the batch runner)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(sam.image_encoder.img_size)

    def input_size(width: int, height: int) -> tuple[int, int]:
        """(h, w) of the image inside SAM's square input: long side = encoder size (SAM's rule)."""
        return transform.get_preprocess_shape(height, width, transform.target_length)

    def prepare(image_id: str) -> dict:
        image = load_for_model(load_image, image_rows[image_id], lambda w, h: input_size(w, h)[::-1])
        item = {"image_id": image_id, "pixels": as_chw(image.pixels), "input_size": input_size(image.width, image.height),
                "original_size": (image.height, image.width)}
        return prepare_input(item, to_input, runtime.device)

    def to_input(item: dict, device: torch.device) -> torch.Tensor:
        return sam_pixels(sam, item["pixels"].to(device), item["input_size"])

    autocast = (
        (lambda: torch.autocast("cuda", dtype=runtime.dtype)) if runtime.is_cuda else contextlib.nullcontext
    )

    @torch.inference_mode()
    def forward(batch: list[dict]) -> list[list[dict]]:
        x = stacked_inputs(batch, to_input, runtime.device, torch.float32)
        with autocast():
            emb = sam.image_encoder(x)
            return [_decode(sam, transform, emb[i : i + 1], b, by_image[b["image_id"]], runtime, provenance)
                    for i, b in enumerate(batch)]

    return run_batches(image_ids, prepare, forward, batch_size)


def _masks_in_input_frame(sam, low_res: torch.Tensor, input_size: tuple[int, int]) -> np.ndarray:
    """SAM's low-res logits ``[N, 1, L, L]`` -> bool masks ``[N, h, w]`` of the image inside
    the square input (upsampled to the encoder size, thresholded, padding cut off).

    Only the low-res rows/columns that the image part needs (+1 for the bilinear neighbour)
    are upsampled: at an exact integer factor, each output pixel reads the same two input
    pixels either way, so the masks are identical while the padding costs nothing.
    """
    size = sam.image_encoder.img_size
    low = low_res.shape[-1]
    factor = size // low
    rows = min(low, math.ceil(input_size[0] / factor) + 1)
    cols = min(low, math.ceil(input_size[1] / factor) + 1)
    up = F.interpolate(low_res[..., :rows, :cols].float(), (rows * factor, cols * factor), mode="bilinear",
                       align_corners=False)
    return (up[:, 0, : input_size[0], : input_size[1]] > sam.mask_threshold).cpu().numpy()


def _decode(sam, transform, emb, prep, objs, runtime, provenance) -> list[dict]:
    h, w = prep["original_size"]
    input_size = prep["input_size"]
    scale = (input_size[1] / w, input_size[0] / h)
    pe = sam.prompt_encoder.get_dense_pe()

    def decode(points, boxes, multimask: bool):
        sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
        low, iou = sam.mask_decoder(image_embeddings=emb, image_pe=pe, sparse_prompt_embeddings=sparse,
                                    dense_prompt_embeddings=dense, multimask_output=multimask)
        best = iou.float().argmax(dim=1)  # one candidate unless multimask
        pick = torch.arange(len(best), device=best.device)
        return _masks_in_input_frame(sam, low[pick, best][:, None], input_size), iou[pick, best].float().cpu().numpy()

    def summarise(chunk: list[dict], points, boxes, multimask: bool) -> list[dict]:
        masks, ious = decode(points, boxes, multimask)
        return [mask_row(o, masks[k], ious[k], scale, provenance) for k, o in enumerate(chunk)]

    rows = []
    boxed = [o for o in objs if o["bbox_px"] is not None]
    for start in range(0, len(boxed), DECODE_CHUNK):
        chunk = boxed[start : start + DECODE_CHUNK]
        boxes = torch.tensor([o["bbox_px"] for o in chunk], dtype=torch.float32, device=runtime.device)
        rows += summarise(chunk, None, transform.apply_boxes_torch(boxes, (h, w)), False)
    # Point prompts: objects with the same number of points decode together.
    pointed = [o for o in objs if o["bbox_px"] is None]
    by_count: dict[int, list[int]] = defaultdict(list)
    for i, o in enumerate(pointed):
        by_count[len(o["points"])].append(i)
    point_rows: dict[int, dict] = {}
    for n_points, members in by_count.items():
        for start in range(0, len(members), DECODE_CHUNK):
            idx = members[start : start + DECODE_CHUNK]
            pts = torch.tensor([[[p["x"], p["y"]] for p in pointed[i]["points"]] for i in idx], dtype=torch.float32,
                               device=runtime.device)
            labels = torch.ones(pts.shape[:2], dtype=torch.int64, device=runtime.device)
            chunk = [pointed[i] for i in idx]
            done = summarise(chunk, (transform.apply_coords_torch(pts, (h, w)), labels), None, n_points == 1)
            point_rows.update(zip(idx, done))
    return rows + [point_rows[i] for i in range(len(pointed))]
