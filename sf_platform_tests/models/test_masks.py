"""Masks: box backend, SAM with batched encoding (once per image) matching SamPredictor."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.mask_bits import MASK_GRID, grid_from_mask, unpack_grid
from sf_platform.models.loading import ModelWeightsMissing
from sf_platform.models.masks import run_masks
from sf_platform_tests.models.conftest import Loader, images_table


def _objects(photos):
    return pa.Table.from_pylist([
        {"source": "t", "shard": "0", "object_id": "a1", "image_id": "astronaut", "category": "person",
         "bbox_px": [120.0, 20.0, 400.0, 500.0]},
        {"source": "t", "shard": "0", "object_id": "a2", "image_id": "astronaut", "category": "flag",
         "bbox_px": [10.0, 10.0, 100.0, 90.0]},
        {"source": "t", "shard": "0", "object_id": "c1", "image_id": "chelsea", "category": "cat",
         "bbox_px": [50.5, 30.25, 300.0, 290.0]},
        {"source": "t", "shard": "0", "object_id": "k1", "image_id": "coffee", "category": "cup",
         "points": [{"x": 300.0, "y": 200.0}]},
    ], schema=schemas.OBJECTS)


def test_box_backend_is_the_box(photos):
    cfg = ModelsConfig(masks={"backend": "box", "checkpoint": None})
    loader = Loader(photos)
    out, meta = run_masks(images_table(photos), _objects(photos), cfg, loader)
    assert loader.loaded == [] and meta["model"] == "box" and not meta["model_loaded"]
    rows = {r["object_id"]: r for r in out.to_pylist()}
    assert set(rows) == {"a1", "a2", "c1"}  # a point has no box to be its mask
    r = rows["c1"]
    assert unpack_grid(r["mask_bits"], r["mask_grid"]).all()
    assert r["mask_area"] == pytest.approx((300 - 50.5) * (290 - 30.25))
    assert (r["mask_pred_iou"], r["mask_box_iou"], r["mask_provenance"]) == (1.0, 1.0, "box")
    assert r["mask_frame_px"] == [50.5, 30.25, 300.0, 290.0]


def test_sam_without_checkpoint_is_a_clear_error(photos):
    with pytest.raises(ModelWeightsMissing, match="models.masks.checkpoint"):
        run_masks(images_table(photos), _objects(photos), ModelsConfig(device="cpu"), Loader(photos))


def test_sam_encodes_each_image_once_in_batches(photos, tiny_dir, monkeypatch):
    from segment_anything.modeling import ImageEncoderViT

    encoded: list[int] = []
    original = ImageEncoderViT.forward

    def counting(self, x):
        encoded.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(ImageEncoderViT, "forward", counting)
    cfg = ModelsConfig(profile="tiny", device="cpu", masks={"batch_size": 2})
    out, meta = run_masks(images_table(photos), _objects(photos), cfg, Loader(photos), tiny_dir=tiny_dir)
    assert encoded == [2, 1]  # three images, batch 2: each image through the encoder once
    assert out.schema == schemas.MASKS and out.num_rows == 4
    rows = {r["object_id"]: r for r in out.to_pylist()}
    for r in rows.values():
        assert r["mask_grid"] == MASK_GRID and len(r["mask_bits"]) == MASK_GRID * MASK_GRID // 8
        assert r["mask_provenance"].startswith("sam:tiny:") and np.isfinite(r["mask_pred_iou"])
        assert 0 <= r["mask_area"] <= photos[r["image_id"]].shape[0] * photos[r["image_id"]].shape[1]
    assert 0.0 <= rows["a1"]["mask_box_iou"] <= 1.0 and rows["a1"]["mask_frame_px"] == [120.0, 20.0, 400.0, 500.0]
    assert rows["k1"]["mask_box_iou"] is None  # point prompt: no box to compare with
    assert meta["tiny"] and meta["batch_size_used"] == 2 and meta["counts"]["masks"] == 4
    assert meta["revision"].startswith("sha256:") and meta["device"] == "cpu"


def test_batched_path_matches_sam_predictor(photos, tiny_dir):
    """The batched encoder + shared-embedding decoding gives SamPredictor's answer."""
    from segment_anything import SamPredictor

    from sf_platform.models.device import resolve_runtime
    from sf_platform.models.loading import load_sam, model_ref

    cfg = ModelsConfig(profile="tiny", device="cpu", masks={"batch_size": 3})
    objs = _objects(photos)
    out, _ = run_masks(images_table(photos), objs, cfg, Loader(photos), tiny_dir=tiny_dir)
    ours = {r["object_id"]: r for r in out.to_pylist()}

    sam = load_sam(model_ref(cfg, "masks", tiny_dir)[0], "tiny", runtime=resolve_runtime("cpu")).model
    predictor = SamPredictor(sam)
    predictor.set_image(photos["astronaut"])
    for oid in ("a1", "a2"):
        box = np.array(next(o for o in objs.to_pylist() if o["object_id"] == oid)["bbox_px"])
        masks, iou, _ = predictor.predict(box=box, multimask_output=False)
        assert ours[oid]["mask_pred_iou"] == pytest.approx(float(iou[0]), abs=1e-4)
        expected = grid_from_mask(masks[0], box)
        agree = (unpack_grid(ours[oid]["mask_bits"]) == expected).mean()
        assert agree >= 0.95, oid
        # Ours is thresholded in SAM's input frame (here 256 px for a 512 px photo), the
        # predictor's at full size: a random tiny model's ragged masks differ a little at edges.
        assert ours[oid]["mask_area"] == pytest.approx(float(masks[0].sum()), rel=0.1)


def test_sam_pixels_match_segment_anythings_preprocessing(photos, tiny_dir):
    """Our tensor path reproduces ResizeLongestSide.apply_image (PIL) + Sam.preprocess."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    from sf_platform.models.device import resolve_runtime
    from sf_platform.models.inputs import as_chw
    from sf_platform.models.loading import load_sam
    from sf_platform.models.masks import sam_pixels
    from sf_platform.models.tiny import ensure_tiny_models

    sam = load_sam(ensure_tiny_models(tiny_dir, ops=("masks",))["masks"], "tiny", runtime=resolve_runtime("cpu")).model
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    for img in (photos["coffee"], photos["chelsea"]):
        resized = transform.apply_image(img)
        ref = sam.preprocess(torch.from_numpy(resized).permute(2, 0, 1).float())
        ours = sam_pixels(sam, as_chw(img), resized.shape[:2])
        assert ours.shape == ref.shape
        grey = 1 / 57.0  # one grey level in normalised units
        assert (ours - ref).abs().max() <= 2.5 * grey and (ours - ref).abs().mean() < 0.3 * grey


def test_masks_upsampled_only_where_the_image_is_are_identical():
    import torch
    import torch.nn.functional as F

    from sf_platform.models.masks import _masks_in_input_frame

    class Sam:  # the two attributes the function reads
        mask_threshold = 0.0

        class image_encoder:
            img_size = 256

    low = torch.randn(3, 1, 64, 64)
    for size in ((192, 256), (256, 171), (256, 256), (5, 256)):
        full = F.interpolate(low, (256, 256), mode="bilinear", align_corners=False)[:, 0, : size[0], : size[1]] > 0
        assert np.array_equal(_masks_in_input_frame(Sam, low, size), full.numpy()), size
