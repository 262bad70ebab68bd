"""Depth: given maps pass through (no model), tiny Depth-Anything batched by shape, OOM back-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.core.depth_stats import decode_depth_map, map_shape
from sf_platform.models.depth import run_depth
from sf_platform_tests.models.conftest import Loader, images_table


def _no_given(uri):
    raise AssertionError("no given depth here")


def test_given_depth_passes_through_without_a_model(photos):
    cfg = ModelsConfig(profile="real", depth={"model": None})
    h, w = photos["coffee"].shape[:2]
    maps = {
        "mem://ok": np.where(np.arange(w)[None, :] < w // 2, 2.0, 5.0).astype(np.float32) * np.ones((h, 1), np.float32),
        "mem://rotated": np.ones((w, h), np.float32),
        "mem://empty": np.zeros((h, w), np.float32),
    }
    images = images_table({"coffee": photos["coffee"]}, coffee={"depth_uri": "mem://ok"})
    loader = Loader(photos)
    out, meta = run_depth(images, cfg, loader, lambda row: maps[row["depth_uri"]])
    assert loader.loaded == [] and not meta["model_loaded"] and meta["model"] == "given"
    (row,) = out.to_pylist()
    assert (row["depth_kind"], row["depth_provenance"]) == ("metric", "given")
    assert (row["map_height"], row["map_width"]) == map_shape(h, w)
    d = decode_depth_map(row["depth_map"], row["map_height"], row["map_width"])
    assert set(np.unique(d)) == {2.0, 5.0} and (row["depth_min"], row["depth_max"]) == (2.0, 5.0)

    bad = images_table({"a": photos["coffee"], "b": photos["coffee"]}, a={"depth_uri": "mem://rotated"},
                       b={"depth_uri": "mem://empty"})
    # depth_policy skip: the rejected maps become rows without a map that say why (no model).
    out, meta = run_depth(bad, cfg, loader, lambda row: maps[row["depth_uri"]], skips=lambda row: True)
    assert out.schema == schemas.DEPTH and loader.loaded == [] and not meta["model_loaded"]
    rows = {r["image_id"]: r for r in out.to_pylist()}
    assert {k: (r["depth_status"], r["depth_reason"], r["depth_map"]) for k, r in rows.items()} == {
        "a": ("skipped", "depth_shape_mismatch", None), "b": ("skipped", "depth_empty", None)}
    assert all("depth_policy: skip" in r["depth_detail"] for r in rows.values())
    assert meta["counts"] == {"images": 2, "given": 0, "predicted": 0, "rejected": 2, "skipped": 2}
    assert meta["rejected_depth_maps"] == {"a": "depth_shape_mismatch", "b": "depth_empty"}


def test_tiny_depth_anything_shapes_and_meta(photos, tiny_dir):
    cfg = ModelsConfig(profile="tiny", device="cpu", depth={"batch_size": 4})
    out, meta = run_depth(images_table(photos), cfg, Loader(photos), _no_given, tiny_dir=tiny_dir)
    assert out.schema == schemas.DEPTH and out.column("image_id").to_pylist() == list(photos)  # input order
    for row in out.to_pylist():
        h, w = photos[row["image_id"]].shape[:2]
        assert (row["map_height"], row["map_width"]) == map_shape(h, w)
        assert len(row["depth_map"]) == 2 * row["map_height"] * row["map_width"]
        assert (row["depth_kind"], row["depth_provenance"]) == ("disparity", "tiny:depth")
        assert row["depth_min"] <= row["depth_max"]
    assert meta["tiny"] and meta["model"] == "tiny:depth" and meta["dtype"] == "float32"
    # astronaut is square, coffee and chelsea 3:2: their resized inputs differ, so >= 2 batches.
    assert meta["batches"] >= 2
    assert meta["counts"] == {"images": 3, "given": 0, "predicted": 3, "rejected": 0, "skipped": 0}


@pytest.mark.faults
def test_oom_backoff_gives_the_same_maps(photos, tiny_dir, monkeypatch):
    from transformers import DepthAnythingForDepthEstimation

    same = {f"img{i}": photos["astronaut"][:, ::-1] if i % 2 else photos["astronaut"] for i in range(5)}
    cfg = ModelsConfig(profile="tiny", device="cpu", depth={"batch_size": 4})
    ref, _ = run_depth(images_table(same), cfg, Loader(same), _no_given, tiny_dir=tiny_dir)

    original = DepthAnythingForDepthEstimation.forward
    seen: list[int] = []

    def small_gpu(self, pixel_values, **kw):
        seen.append(pixel_values.shape[0])
        if pixel_values.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return original(self, pixel_values, **kw)

    monkeypatch.setattr(DepthAnythingForDepthEstimation, "forward", small_gpu)
    out, meta = run_depth(images_table(same), cfg, Loader(same), _no_given, tiny_dir=tiny_dir)
    assert seen[:3] == [4, 2, 1]
    assert meta["batch_size"] == 4 and meta["batch_size_used"] == 1 and meta["oom_backoffs"] == 2
    assert out.num_rows == 5
    for a, b in zip(ref.to_pylist(), out.to_pylist()):
        da = decode_depth_map(a["depth_map"], a["map_height"], a["map_width"])
        db = decode_depth_map(b["depth_map"], b["map_height"], b["map_width"])
        assert np.allclose(da, db, rtol=1e-2, atol=1e-9)


def test_tensor_preprocessing_matches_dpt_processor(photos):
    """Depth-Anything's resize + normalise as tensor ops equal DPTImageProcessor's pixels."""
    import pytest
    from transformers import DPTImageProcessor

    from sf_platform.models.depth import dpt_input_size
    from sf_platform.models.inputs import BICUBIC, as_chw, normalize, resize

    proc = DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                             image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    size = dpt_input_size(proc)
    for img in (photos["coffee"], photos["chelsea"], photos["astronaut"][:300]):
        ref = proc(images=img, return_tensors="pt")["pixel_values"][0]
        target = size(*img.shape[:2])
        ours = normalize(resize(as_chw(img), target, BICUBIC), proc.image_mean, proc.image_std)
        assert tuple(ours.shape) == tuple(ref.shape) and target[0] % 14 == 0 and target[1] % 14 == 0
        assert (ours - ref).abs().max() < 1e-4
    with pytest.raises(ValueError, match="not supported"):
        dpt_input_size(DPTImageProcessor(do_pad=True, size_divisor=32))


def test_reduced_jpeg_decodes_give_full_size_maps(tmp_path, photos, tiny_dir):
    """With the production loader, photos are decoded at the model's scale, maps keep the photo's."""
    import pyarrow as pa
    from PIL import Image

    from sf_platform.models.inputs import ImageLoader

    rows = []
    for k, img in photos.items():
        big = Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2))
        big.save(tmp_path / f"{k}.jpg", quality=90)
        rows.append({"source": "t", "shard": "0", "image_id": k, "image_uri": (tmp_path / f"{k}.jpg").as_uri(),
                     "width": big.width, "height": big.height})
    images = pa.Table.from_pylist(rows, schema=schemas.IMAGES)
    loader = ImageLoader()
    decoded = []
    at_least = loader.at_least
    loader.at_least = lambda row, need: decoded.append(at_least(row, need)) or decoded[-1]
    cfg = ModelsConfig(profile="tiny", device="cpu", depth={"batch_size": 2})
    out, meta = run_depth(images, cfg, loader, _no_given, tiny_dir=tiny_dir)
    assert out.num_rows == 3 and meta["counts"]["predicted"] == 3
    assert all(m.scale[0] < 1 for m in decoded)  # 252-px model input: 1/2 or 1/4 decodes
    for r, img in zip(out.to_pylist(), rows):
        assert (r["map_height"], r["map_width"]) == map_shape(img["height"], img["width"])
        assert np.isfinite(decode_depth_map(r["depth_map"], r["map_height"], r["map_width"])).all()
