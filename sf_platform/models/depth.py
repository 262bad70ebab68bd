"""Per-image depth maps: given (RGB-D / synthetic sources) or Depth-Anything-V2.

- Given depth (``images.depth_uri`` set): ``read_given_depth(image_row)`` returns float32
  metres; the map is stored as ``"metric"`` with provenance ``"given"`` and no model is loaded.
  Curation has already vetted every given map (``core.depth_io``) and quarantined the bad and
  missing ones; a map the op still cannot use (changed since curation, or a caller without
  curation: unreadable, not 2-D, an aspect ratio more than ``ASPECT_TOLERANCE`` off its
  image's, no valid pixel) is *rejected* here.
- An image without usable given depth follows its source's ``depth_policy``: ``skips(row)``
  True (``skip``) gives it no depth; otherwise the model estimates it.  Nothing is dropped
  silently: every image ends up as one row of the DEPTH table with ``depth_status``
  ``given`` / ``estimated`` / ``skipped``, and an op-level reject or a skip carries its
  ``depth_reason`` and ``depth_detail`` (a skipped row has no map).
- The model is ``DepthAnythingForDepthEstimation`` (transformers).  Relative models output
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
from sf_platform.core.depth_io import DepthRejected
from sf_platform.core.depth_stats import (
    DEPTH_MAX_SIDE,
    depth_range,
    encode_depth_map,
    map_shape,
    nearest_downsample,
)
from sf_platform.models.batching import BatchRunner, prefetch, run_batches
from sf_platform.models.device import Runtime
from sf_platform.models.inputs import (
    BICUBIC,
    as_chw,
    load_for_model,
    normalize,
    prepare_input,
    resize,
    stacked_inputs,
)
from sf_platform.models.loading import LoadedModel, load_transformers, model_ref
from sf_platform.models.op import LoadImage, ModelOp, Plan

# 2% aspect-ratio difference: what rounding a 4:3 image to a sensor's 640x480 (or a resize to
# a multiple of 8/14) can produce; anything larger means a rotated or cropped map.
ASPECT_TOLERANCE = 0.02

ReadDepth = Callable[[dict], np.ndarray]  # image row -> float32 metres (raises DepthRejected)


def _depth_row(image: dict, depth_map: np.ndarray, kind: str, provenance: str,
               map16: np.ndarray | None = None) -> dict:
    """``map16``: ``depth_map`` already cast to float16 (by torch: numpy's cast takes a slow
    path, ~3 ms per 256x192 map, when values are float16 subnormals, as tiny models' are)."""
    lo, hi = depth_range(depth_map, kind)
    data, h, w = encode_depth_map(depth_map if map16 is None else map16)
    return {
        "source": image.get("source"), "shard": image.get("shard"), "image_id": image["image_id"],
        "depth_map": data, "map_height": h, "map_width": w, "depth_kind": kind, "depth_provenance": provenance,
        "depth_min": lo, "depth_max": hi, "depth_status": "given" if provenance == "given" else "estimated",
    }


def _reject(reason: str, detail: str) -> dict:
    return {"depth_reason": reason, "depth_detail": detail}


def given_depth_row(image: dict, depth: np.ndarray) -> tuple[dict | None, dict | None]:
    """(DEPTH row, None) for a usable given map, else (None, {depth_reason, depth_detail})."""
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        return None, _reject("depth_not_2d", f"given depth map has shape {d.shape}, expected H x W")
    img_aspect = image["width"] / image["height"]
    map_aspect = d.shape[1] / d.shape[0]
    if abs(map_aspect / img_aspect - 1) > ASPECT_TOLERANCE:
        return None, _reject(
            "depth_shape_mismatch",
            f"given depth map is {d.shape[1]}x{d.shape[0]} but the image is {image['width']}x{image['height']}",
        )
    small = nearest_downsample(d)
    if depth_range(small, "metric")[0] is None:
        return None, _reject("depth_empty", "given depth map has no finite positive value")
    return _depth_row(image, small, "metric", "given"), None


def dpt_input_size(processor) -> Callable[[int, int], tuple[int, int]]:
    """``(height, width) -> (h, w)`` that ``DPTImageProcessor`` resizes a photo to.

    The size rule (keep the aspect ratio, scale as little as possible, round to a multiple of
    the patch size) is the processor's own function; the pixels are then made by
    :func:`sf_platform.models.inputs.resize` + ``normalize`` with the processor's settings,
    which is all the processor does for Depth-Anything.  Settings this path does not
    reproduce are refused here rather than silently ignored.
    """
    from types import SimpleNamespace

    from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

    unsupported = {k: getattr(processor, k, None) for k in ("do_pad", "do_center_crop", "do_reduce_labels")}
    unsupported = {k: v for k, v in unsupported.items() if v}
    if (unsupported or not processor.do_resize or not processor.do_rescale or not processor.do_normalize
            or int(processor.resample) != 3 or abs(processor.rescale_factor - 1 / 255) > 1e-12):
        raise ValueError(f"depth processor settings not supported by the tensor preprocessing: {processor}")
    target = (processor.size["height"], processor.size["width"])

    def size(height: int, width: int) -> tuple[int, int]:
        out = get_resize_output_image_size(SimpleNamespace(shape=(height, width)), target,
                                           processor.keep_aspect_ratio, processor.ensure_multiple_of or 1)
        return int(out.height), int(out.width)

    return size


class DepthOp(ModelOp):
    """Given maps pass through; every other image goes through Depth-Anything-V2."""

    op = "depth"

    @classmethod
    def output_settings(cls, cfg: ModelsConfig) -> dict[str, Any]:
        return super().output_settings(cfg) | {"aspect_tolerance": ASPECT_TOLERANCE, "map_max_side": DEPTH_MAX_SIDE}

    def __init__(self, cfg: ModelsConfig, load_image: LoadImage, read_given_depth: ReadDepth, *,
                 skips: Callable[[dict], bool] | None = None, **kw):
        super().__init__(cfg, load_image, **kw)
        self.read_given_depth = read_given_depth
        self.skips = skips or (lambda row: False)

    def _read(self, row: dict) -> np.ndarray | DepthRejected:
        try:
            return self.read_given_depth(row)
        except DepthRejected as exc:
            return exc

    def plan(self, images: pa.Table, objects: pa.Table | None) -> Plan:
        rows_in = images.to_pylist()
        given = [r for r in rows_in if r.get("depth_uri")]
        out: dict[str, dict] = {}
        rejects: dict[str, dict] = {}
        for img, depth in zip(given, prefetch(self._read, given)):
            if isinstance(depth, DepthRejected):
                row, bad = None, _reject(depth.reason, depth.detail)
            else:
                row, bad = given_depth_row(img, depth)
            if row is not None:
                out[img["image_id"]] = row
            else:
                rejects[img["image_id"]] = bad
        without = [r for r in rows_in if r["image_id"] not in out]
        skipped = {r["image_id"]: _skipped_row(r, rejects.get(r["image_id"])) for r in without if self.skips(r)}
        todo = [r for r in without if r["image_id"] not in skipped]
        return Plan(todo, {"rows_in": rows_in, "out": out, "rejects": rejects, "skipped": skipped})

    def load(self, runtime: Runtime) -> LoadedModel:
        ref, tiny = model_ref(self.cfg, "depth", self.tiny_dir)
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

        return load_transformers(DepthAnythingForDepthEstimation, AutoImageProcessor, ref, op="depth",
                                 runtime=runtime, revision=self.cfg.depth.revision, tiny=tiny)

    def run_batches(self, plan: Plan, loaded: LoadedModel, runtime: Runtime) -> tuple[list, BatchRunner]:
        kind = "metric" if loaded.model.config.depth_estimation_type == "metric" else "disparity"
        processor, model = loaded.processor, loaded.model
        input_size = dpt_input_size(processor)
        load_image = self.load_image

        def prepare(img: dict) -> dict:
            image = load_for_model(load_image, img, lambda w, h: input_size(h, w)[::-1])
            item = {"image": img, "pixels": as_chw(image.pixels), "size": input_size(image.height, image.width),
                    "map_shape": map_shape(image.height, image.width)}
            return prepare_input(item, to_input, runtime.device)

        def to_input(item: dict, device: torch.device) -> torch.Tensor:
            x = resize(item["pixels"].to(device), item["size"], BICUBIC)
            return normalize(x, processor.image_mean, processor.image_std)

        @torch.inference_mode()
        def forward(batch: list[dict]) -> list[dict]:
            x = stacked_inputs(batch, to_input, runtime.device, runtime.dtype)
            pred = model(pixel_values=x).predicted_depth.float()  # [B, h, w]
            res = []
            for b, p in zip(batch, pred):
                small = F.interpolate(p[None, None], size=b["map_shape"], mode="bilinear", align_corners=False,
                                      antialias=True)[0, 0]
                res.append(_depth_row(b["image"], small.cpu().numpy(), kind, loaded.model_id,
                                      small.half().cpu().numpy()))
            return res

        ordered = sorted(plan.todo, key=lambda r: (r["width"] / r["height"], r["width"], r["height"], r["image_id"]))
        return run_batches(ordered, prepare, forward, self.cfg.depth.batch_size, key=lambda b: b["size"])

    def summary(self, meta: dict[str, Any]) -> str:
        n = meta["counts"]
        return (f"depth: {n['images']} images, {n['predicted']} model / {n['given']} given, "
                f"{n['rejected']} rejected, {n['skipped']} skipped")

    def attach(self, plan: Plan, outputs: list, loaded: LoadedModel | None) -> tuple[pa.Table, dict[str, Any]]:
        out, rows_in, rejects, skipped = (plan.data[k] for k in ("out", "rows_in", "rejects", "skipped"))
        given = len(out)
        out.update({r["image_id"]: r | rejects.get(r["image_id"], {}) for r in outputs})
        out.update(skipped)
        table = pa.Table.from_pylist([out[r["image_id"]] for r in rows_in if r["image_id"] in out],
                                     schema=schemas.DEPTH)
        meta: dict[str, Any] = {"counts": {"images": len(rows_in), "given": given, "predicted": len(plan.todo),
                                           "rejected": len(rejects), "skipped": len(skipped)}}
        if rejects:
            meta["rejected_depth_maps"] = {k: v["depth_reason"] for k, v in sorted(rejects.items())}
        if loaded is None and given:
            meta["model"] = "given"
        return table, meta


def _skipped_row(image: dict, reject: dict | None) -> dict:
    """The DEPTH row of an image that gets no depth (its source's ``depth_policy: skip``)."""
    why = reject or _reject("depth_missing", "no usable given depth map (curation's quarantine row says why)")
    return {"source": image.get("source"), "shard": image.get("shard"), "image_id": image["image_id"],
            "depth_status": "skipped", "depth_reason": why["depth_reason"],
            "depth_detail": why["depth_detail"] + "; depth_policy: skip, so the image has no depth"}


def run_depth(
    images: pa.Table,
    cfg: ModelsConfig,
    load_image: LoadImage,
    read_given_depth: ReadDepth,
    *,
    skips: Callable[[dict], bool] | None = None,
    tiny_dir: str | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """DEPTH table (one row per image: its map, or why it has none) and the op's metadata."""
    return DepthOp(cfg, load_image, read_given_depth, skips=skips, tiny_dir=tiny_dir).run(images)
