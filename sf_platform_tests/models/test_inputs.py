"""Model inputs: plain and reduced-decode loaders, uint8 tensor resize and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sf_platform.core.imaging import ModelImage
from sf_platform.models.inputs import ImageLoader, as_chw, load_for_model, normalize, resize


def test_plain_loader_gives_the_full_image(photos):
    img = photos["coffee"][:, ::-1]  # a view: made contiguous, like ensure_rgb does
    m = load_for_model(lambda row: img, {"image_id": "coffee"}, lambda w, h: (10, 10))
    assert isinstance(m, ModelImage) and m.scale == (1.0, 1.0)
    assert (m.width, m.height) == (img.shape[1], img.shape[0]) and m.pixels.flags.c_contiguous
    np.testing.assert_array_equal(m.pixels, img)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        load_for_model(lambda row: img[..., 0], {"image_id": "coffee"})


def test_image_loader_reduces_jpegs_when_asked(tmp_path, photos):
    path = tmp_path / "a.jpg"
    Image.fromarray(photos["astronaut"]).save(path, quality=95)  # 512 x 512
    loader, row = ImageLoader(), {"image_id": "a", "image_uri": path.as_uri()}
    assert loader(row).shape == (512, 512, 3)
    m = load_for_model(loader, row, lambda w, h: (w // 3, h // 3))
    assert m.pixels.shape == (256, 256, 3) and (m.width, m.height) == (512, 512) and m.scale == (0.5, 0.5)


def test_resize_matches_pil_and_normalize_matches_processor_formula(photos):
    img = photos["chelsea"]
    ours = resize(as_chw(img), (150, 225)).permute(1, 2, 0).numpy().astype(int)
    ref = np.asarray(Image.fromarray(img).resize((225, 150), Image.BILINEAR)).astype(int)
    assert np.abs(ours - ref).max() <= 2 and np.abs(ours - ref).mean() < 0.3
    assert resize(as_chw(img), img.shape[:2]).data_ptr() == as_chw(img).data_ptr()  # same size: no work
    x = normalize(as_chw(img), [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    expect = (img.astype(np.float32) / 255 - [0.5, 0.4, 0.3]) / [0.2, 0.25, 0.3]
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expect, atol=1e-5)
    assert x.dtype == torch.float32
