"""Person keypoints (COCO-17) and the way each person faces.

- Given keypoints (``objects.keypoints`` not null: COCO person keypoints, synthetic scenes)
  pass through with provenance ``"given"``; no model is loaded when every person has them.
- Otherwise ``VitPoseForPoseEstimation`` (top-down: one crop per person box, 256x192 for the
  real models).  Batches are made of person crops, not images, so a crowded image does not
  blow up a batch; images are read and cropped in the prefetch threads.
- ``facing`` / ``facing_confidence`` from the keypoints (``core.facing``).

Which objects are persons: ``core.instances.is_person`` (a person category, with a box, not a
crowd / group box: one skeleton for a crowd box is meaningless).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.facing import FACING_LABELS, FACING_RULE_VERSION, facing_from_keypoints
from sf_platform.core.imaging import ModelImage
from sf_platform.core.instances import is_person
from sf_platform.models.batching import BatchRunner, run_batches
from sf_platform.models.device import Runtime
from sf_platform.models.inputs import load_for_model, normalize
from sf_platform.models.loading import LoadedModel, load_transformers, model_ref
from sf_platform.models.op import LoadImage, ModelOp, Plan, group_by_image

# DARK post-processing kernel of ``VitPoseImageProcessor.post_process_pose_estimation``.
DARK_KERNEL = 11


def pose_row(obj: dict, keypoints, provenance: str) -> dict:
    kp = [float(v) for v in np.asarray(keypoints, dtype=np.float32).reshape(-1)]
    if len(kp) != 51:
        raise ValueError(f"object {obj['object_id']!r}: keypoints must be 17 x (x, y, score), got {len(kp)} values")
    facing, conf = facing_from_keypoints(kp, box=obj.get("bbox_px"))
    return {k: obj[k] for k in ("source", "shard", "object_id", "image_id")} | {
        "keypoints": kp, "facing": facing, "facing_confidence": conf, "pose_provenance": provenance,
    }


class PoseOp(ModelOp):
    """Given keypoints pass through; every other person goes through ViTPose."""

    op = "pose"

    @classmethod
    def output_settings(cls, cfg: ModelsConfig) -> dict[str, Any]:
        return super().output_settings(cfg) | {"facing_rule": FACING_RULE_VERSION, "dark_kernel": DARK_KERNEL}

    def plan(self, images: pa.Table, objects: pa.Table | None) -> Plan:
        objs = objects.to_pylist()
        given = [o for o in objs if o.get("keypoints") is not None]
        todo = [o for o in objs if o.get("keypoints") is None and is_person(o)]
        image_rows, by_image = group_by_image(todo, images)
        return Plan(sorted(by_image), {"given": given, "estimated": len(todo), "image_rows": image_rows,
                                       "by_image": by_image})

    def load(self, runtime: Runtime) -> LoadedModel:
        ref, tiny = model_ref(self.cfg, "pose", self.tiny_dir)
        from transformers import AutoProcessor, VitPoseForPoseEstimation

        return load_transformers(VitPoseForPoseEstimation, AutoProcessor, ref, op="pose", runtime=runtime,
                                 revision=self.cfg.pose.revision, tiny=tiny)

    def run_batches(self, plan: Plan, loaded: LoadedModel, runtime: Runtime) -> tuple[list, BatchRunner]:
        return estimate(loaded, runtime, plan.todo, plan.data["image_rows"], plan.data["by_image"],
                        self.load_image, self.cfg.pose.batch_size)

    def summary(self, meta: dict[str, Any]) -> str:
        n = meta["counts"]
        return f"poses: {n['persons']} persons, {n['given']} given / {n['estimated']} estimated"

    def attach(self, plan: Plan, outputs: list, loaded: LoadedModel | None) -> tuple[pa.Table, dict[str, Any]]:
        given = plan.data["given"]
        rows = [pose_row(o, o["keypoints"], "given") for o in given] + outputs
        table = pa.Table.from_pylist(rows, schema=schemas.POSES)
        facings = table.column("facing").to_pylist()
        meta: dict[str, Any] = {
            "counts": {"given": len(given), "estimated": plan.data["estimated"], "persons": table.num_rows}
            | {f"facing_{f}": facings.count(f) for f in FACING_LABELS}
        }
        if loaded is None and given:
            meta["model"] = "given"
        return table, meta


def run_poses(
    images: pa.Table, objects: pa.Table, cfg: ModelsConfig, load_image: LoadImage, *, tiny_dir: str | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """POSES table (one row per person with given or estimated keypoints) and the op's metadata."""
    return PoseOp(cfg, load_image, tiny_dir=tiny_dir).run(images, objects)


def estimate(loaded, runtime, image_ids: list[str], image_rows: dict[str, dict], by_image: dict[str, list[dict]],
             load_image: LoadImage, batch_size: int):
    """ViTPose keypoints for the persons of ``image_ids`` (``by_image``: objects with boxes)
    -> (POSES rows, batch runner)."""
    processor, model = loaded.processor, loaded.model
    out_size = (processor.size["height"], processor.size["width"])

    def prepare(image_id: str) -> list[dict]:
        objs = by_image[image_id]
        xywh = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in (o["bbox_px"] for o in objs)]
        image = load_for_model(load_image, image_rows[image_id], crops_need(xywh, out_size))
        crops = vitpose_crops(image, xywh, out_size)
        pixels = normalize(torch.from_numpy(crops).permute(0, 3, 1, 2), processor.image_mean, processor.image_std)
        return [{"obj": o, "box": bx, "pixels": c} for o, bx, c in zip(objs, xywh, pixels)]

    @torch.inference_mode()
    def forward(batch: list[dict]) -> list[dict]:
        x = torch.stack([b["pixels"] for b in batch]).to(runtime.device, runtime.dtype)
        heatmaps = model(pixel_values=x).heatmaps.float().cpu().numpy()
        keypoints, scores = vitpose_keypoints(heatmaps, [b["box"] for b in batch], out_size)
        kp = np.concatenate([keypoints, scores[..., None]], axis=2)
        return [pose_row(b["obj"], k, loaded.model_id) for b, k in zip(batch, kp)]

    return run_batches(image_ids, prepare, forward, batch_size)


# --- ViTPose pre/post-processing ---------------------------------------------------------------
# The person crops and the heatmap decoding of ``VitPoseImageProcessor`` (same functions, same
# numbers: tested against it), restructured for cost: the processor warps each crop out of a
# float copy of the whole photo and blurs each of the 17 heatmaps of each person in its own
# scipy call; here only the pixels a crop can sample are warped and the heatmaps are blurred
# in one call.  Crops may come from a reduced decode (``ModelImage.scale``): a person box that
# is larger than the crop needs no more than the crop's resolution.


def _center_scale(box_xywh, out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    from transformers.models.vitpose.image_processing_vitpose import box_to_center_and_scale

    return box_to_center_and_scale(box_xywh, image_width=out_size[1], image_height=out_size[0])


def crops_need(boxes_xywh: list, out_size: tuple[int, int]):
    """``need`` for :func:`load_for_model`: the scale at which every person's crop region
    still has at least one pixel per crop pixel (1.0 = full size)."""
    scale = 0.0
    for box in boxes_xywh:
        _, s = _center_scale(box, out_size)
        roi_w, roi_h = float(s[0]) * 200.0, float(s[1]) * 200.0
        scale = max(scale, out_size[1] / max(roi_w, 1e-6), out_size[0] / max(roi_h, 1e-6))
    scale = min(scale, 1.0)

    def need(width: int, height: int) -> tuple[int, int]:
        return math.ceil(width * scale), math.ceil(height * scale)

    return need


def vitpose_crops(image: ModelImage, boxes_xywh: list, out_size: tuple[int, int]) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 person crops, as ``VitPoseImageProcessor`` warps them.

    Boxes are in the full image frame; ``image.pixels`` may be a reduced decode.  The warp
    (the processor's matrix and its scipy bilinear warp) runs on the region the crop samples
    plus a 2-pixel margin, so that pixels outside the photo still read as 0 and pixels inside
    it as themselves: same values as warping the whole photo.
    """
    from transformers.models.vitpose.image_processing_vitpose import (
        get_warp_matrix,
        scipy_warp_affine,
    )

    pixels = image.pixels
    ih, iw = pixels.shape[:2]
    fx, fy = image.scale
    # reduced pixel (x, y) -> full pixel: a 1/k DCT-scaled pixel covers k full pixels.
    to_full = np.array([[1 / fx, 0, (1 / fx - 1) / 2], [0, 1 / fy, (1 / fy - 1) / 2], [0, 0, 1]])
    out_h, out_w = out_size
    corners = np.array([[0, 0, 1], [out_w - 1, 0, 1], [0, out_h - 1, 1], [out_w - 1, out_h - 1, 1]], float).T
    crops = np.zeros((len(boxes_xywh), out_h, out_w, 3), dtype=np.uint8)
    for i, box in enumerate(boxes_xywh):
        center, scale = _center_scale(box, out_size)
        warp = np.vstack([get_warp_matrix(0, center * 2.0, np.array((out_w, out_h)) - 1.0, scale * 200.0), [0, 0, 1]])
        warp = warp @ to_full  # reduced pixels -> crop pixels
        src = np.linalg.inv(warp) @ corners  # where the crop's corners sample
        x0 = int(np.clip(np.floor(src[0].min()) - 2, 0, iw))
        x1 = int(np.clip(np.ceil(src[0].max()) + 3, 0, iw))
        y0 = int(np.clip(np.floor(src[1].min()) - 2, 0, ih))
        y1 = int(np.clip(np.ceil(src[1].max()) + 3, 0, ih))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue  # the crop lies outside the photo: all black, as the processor's would be
        shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], float)
        region = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        crops[i] = scipy_warp_affine(src=region, M=(warp @ shift)[:2].astype(np.float32), size=(out_h, out_w))
    return crops


def _dark_refine(coords: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """transformers' ``post_dark_unbiased_data_processing`` (DARK, Zhang et al. CVPR 2020) for
    top-down heatmaps, with the Gaussian modulation of all heatmaps in one scipy call."""
    from scipy.ndimage import gaussian_filter

    n, k, height, width = heatmaps.shape
    radius = int((kernel - 1) // 2)
    hm = gaussian_filter(heatmaps, sigma=0.8, radius=(radius, radius), axes=(2, 3))
    hm = np.log(np.clip(hm, 0.001, 50))
    pad = np.pad(hm, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    index = coords[..., 0] + 1 + (coords[..., 1] + 1) * (width + 2)
    index += (width + 2) * (height + 2) * np.arange(0, n * k).reshape(-1, k)
    index = index.astype(int).reshape(-1, 1)
    i_ = pad[index]
    ix1, iy1, ix1y1 = pad[index + 1], pad[index + width + 2], pad[index + width + 3]
    ix1_y1_, ix1_, iy1_ = pad[index - width - 3], pad[index - 1], pad[index - 2 - width]
    derivative = np.concatenate([0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)], axis=1).reshape(n, k, 2, 1)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    hessian = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(n, k, 2, 2)
    hessian = np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2))
    return coords - np.einsum("ijmn,ijnk->ijmk", hessian, derivative).reshape(n, k, 2)


def vitpose_keypoints(heatmaps: np.ndarray, boxes_xywh: list, out_size: tuple[int, int],
                      kernel: int = DARK_KERNEL) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``[N, K, h, w]`` of N person crops -> keypoints ``[N, K, 2]`` in image pixels and
    scores ``[N, K]``: ``VitPoseImageProcessor.post_process_pose_estimation`` for one box each."""
    from transformers.models.vitpose.image_processing_vitpose import (
        get_keypoint_predictions,
        transform_preds,
    )

    height, width = heatmaps.shape[2:]
    coords, scores = get_keypoint_predictions(heatmaps)
    coords = _dark_refine(coords, heatmaps, kernel)
    out = np.empty_like(coords)
    for i, box in enumerate(boxes_xywh):
        center, scale = _center_scale(box, out_size)
        out[i] = transform_preds(coords[i], center=center, scale=scale, output_size=[height, width])
    return out.astype(np.float32), scores[..., 0].astype(np.float32)
