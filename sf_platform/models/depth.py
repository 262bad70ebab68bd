"""Per-image depth maps: given (RGB-D / synthetic sources) or Depth-Anything-V2.

- Given depth (``images.depth_uri`` set): ``read_given_depth(uri)`` returns float32 metres;
  the map is stored as ``"metric"`` with provenance ``"given"`` and no model is loaded.  A
  map whose aspect ratio differs from its image's (more than ``ASPECT_TOLERANCE``) cannot be
  aligned with the boxes; it is not stored and is reported in ``meta["quarantine"]`` with a
  reason, as is a map with no valid pixel.
- Otherwise ``DepthAnythingForDepthEstimation`` (transformers).  Relative models output
  disparity (larger = closer, unknown scale/shift) -> ``"disparity"``; metric fine-tunes
  (``depth_estimation_type == "metric"``) output metres -> ``"metric"``.  Images are batched
  by their resized shape (the processor keeps the aspect ratio, so only same-shape inputs
  stack); the batch stream is sorted by aspect ratio so batches stay full.
- Stored: the map downsampled to <= ``DEPTH_MAX_SIDE`` on the long side, in the image's own
  aspect, float16 (see ``core.depth_stats``).  Model output is resampled with antialiased
  bilinear filtering (it is smooth); given maps with nearest-neighbour (sensor holes and edges
  must not be averaged into fake depths).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.depth_stats import (
    depth_range,
    encode_depth_map,
    map_shape,
    nearest_downsample,
)
from sf_platform.models.batching import ensure_rgb, prefetch, run_pipeline
from sf_platform.models.device import resolve_runtime
from sf_platform.models.loading import base_meta, load_transformers, model_ref

# 2% aspect-ratio difference: what rounding a 4:3 image to a sensor's 640x480 (or a resize to
# a multiple of 8/14) can produce; anything larger means a rotated or cropped map.
ASPECT_TOLERANCE = 0.02

LoadImage = Callable[[dict], np.ndarray]
ReadDepth = Callable[[str], np.ndarray]


def _depth_row(image: dict, depth_map: np.ndarray, kind: str, provenance: str) -> dict:
    lo, hi = depth_range(depth_map, kind)
    data, h, w = encode_depth_map(depth_map)
    return {
        "source": image.get("source"), "shard": image.get("shard"), "image_id": image["image_id"],
        "depth_map": data, "map_height": h, "map_width": w, "depth_kind": kind, "depth_provenance": provenance,
        "depth_min": lo, "depth_max": hi,
    }


def _quarantine(image: dict, reason: str, detail: str) -> dict:
    return {"source": image.get("source"), "shard": image.get("shard"), "kind": "depth", "image_id": image["image_id"],
            "image_uri": image.get("image_uri"), "object_id": None, "reason": reason, "detail": detail}


def given_depth_row(image: dict, depth: np.ndarray) -> tuple[dict | None, dict | None]:
    """(DEPTH row, None) for a usable given map, else (None, quarantine record)."""
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        return None, _quarantine(image, "depth_not_2d", f"given depth map has shape {d.shape}, expected H x W")
    img_aspect = image["width"] / image["height"]
    map_aspect = d.shape[1] / d.shape[0]
    if abs(map_aspect / img_aspect - 1) > ASPECT_TOLERANCE:
        return None, _quarantine(
            image, "depth_shape_mismatch",
            f"given depth map is {d.shape[1]}x{d.shape[0]} but the image is {image['width']}x{image['height']}",
        )
    small = nearest_downsample(d)
    if depth_range(small, "metric")[0] is None:
        return None, _quarantine(image, "depth_empty", "given depth map has no finite positive value")
    return _depth_row(image, small, "metric", "given"), None


def run_depth(
    images: pa.Table,
    cfg: ModelsConfig,
    load_image: LoadImage,
    read_given_depth: ReadDepth,
    *,
    tiny_dir: str | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """DEPTH table (one row per image with a usable map) and the op's metadata."""
    rows_in = images.to_pylist()
    given = [r for r in rows_in if r.get("depth_uri")]
    todo = [r for r in rows_in if not r.get("depth_uri")]
    out: dict[str, dict] = {}
    quarantine: list[dict] = []

    for img, depth in zip(given, prefetch(lambda r: read_given_depth(r["depth_uri"]), given)):
        row, bad = given_depth_row(img, depth)
        if row is not None:
            out[img["image_id"]] = row
        else:
            quarantine.append(bad)

    loaded = runtime = runner = None
    if todo:
        runtime = resolve_runtime(cfg.device)
        ref, tiny = model_ref(cfg, "depth", tiny_dir)
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

        loaded = load_transformers(DepthAnythingForDepthEstimation, AutoImageProcessor, ref, op="depth",
                                   runtime=runtime, revision=cfg.depth.revision, tiny=tiny)
        kind = "metric" if loaded.model.config.depth_estimation_type == "metric" else "disparity"
        processor, model = loaded.processor, loaded.model

        def prepare(img: dict) -> dict:
            rgb = ensure_rgb(load_image(img), img["image_id"])
            pixels = processor(images=rgb, return_tensors="pt")["pixel_values"][0]
            return {"image": img, "pixels": pixels, "map_shape": map_shape(*rgb.shape[:2])}

        @torch.inference_mode()
        def forward(batch: list[dict]) -> list[dict]:
            x = torch.stack([b["pixels"] for b in batch]).to(runtime.device, runtime.dtype)
            pred = model(pixel_values=x).predicted_depth.float()  # [B, h, w]
            res = []
            for b, p in zip(batch, pred):
                small = F.interpolate(p[None, None], size=b["map_shape"], mode="bilinear", align_corners=False,
                                      antialias=True)[0, 0]
                res.append(_depth_row(b["image"], small.cpu().numpy(), kind, loaded.model_id))
            return res

        ordered = sorted(todo, key=lambda r: (r["width"] / r["height"], r["width"], r["height"], r["image_id"]))
        rows, runner = run_pipeline(ordered, prepare, forward, cfg.depth.batch_size,
                                    key=lambda b: tuple(b["pixels"].shape))
        out.update({r["image_id"]: r for r in rows})

    table = pa.Table.from_pylist([out[r["image_id"]] for r in rows_in if r["image_id"] in out], schema=schemas.DEPTH)
    meta = base_meta("depth", loaded, runtime, cfg) | (runner.meta() if runner else {"batch_size": cfg.depth.batch_size})
    meta["counts"] = {"images": len(rows_in), "given": len(given) - len(quarantine), "predicted": len(todo),
                      "quarantined": len(quarantine)}
    meta["quarantine"] = quarantine
    if loaded is None and given:
        meta["model"] = "given"
    return table, meta
