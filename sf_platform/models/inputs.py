"""Model inputs: images decoded at the scale a model needs, resized and normalised as tensors.

Budget: fetch + decode + preprocess + postprocess must stay under ~10 ms of CPU per image so
that 16 loader cores feed a GPU at 1,000 images/s.  Two things make that possible:

- **Reduced decodes.**  Every op knows, from the photo's size alone, the smallest image it
  will resize to (``need(width, height) -> (min_w, min_h)``).  A loader that offers
  ``at_least(row, need)`` (:class:`ImageLoader`) then decodes JPEGs with libjpeg's DCT
  scaling at 1/2, 1/4 or 1/8 while both sides stay at least that big
  (:func:`sf_platform.core.imaging.decode_for_model`).  The result is a
  :class:`~sf_platform.core.imaging.ModelImage`: the pixels plus the FULL oriented size, so
  boxes, points and outputs stay in the photo's pixel frame and the ops scale between the two.
  A plain loader (``row -> H x W x 3 uint8``, as tests use) still works: full-size pixels.
- **Tensor preprocessing.**  Resizing and normalising run as torch ops on a uint8 tensor
  (torchvision's resize: native antialiased uint8 kernels on the CPU, float kernels on CUDA),
  the same calls the transformers processors make, minus their per-call conversions and
  copies.  When the model runs on the CPU this happens in the prefetch threads (in parallel
  with the forward); on an accelerator, in the forward on the device, so the loader cores
  only fetch and decode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import functional as tvF

from sf_platform.core.imaging import ModelImage, load_model_image
from sf_platform.models.batching import ensure_rgb

LoadImage = Callable[[dict], np.ndarray]
Need = Callable[[int, int], tuple[int, int]]  # full oriented (width, height) -> min (width, height)

BILINEAR = tvF.InterpolationMode.BILINEAR
BICUBIC = tvF.InterpolationMode.BICUBIC


class ImageLoader:
    """The perception ops' image loader for rows of the IMAGES table (``image_uri``).

    ``loader(row)`` returns the full oriented ``H x W x 3`` uint8 image (any consumer);
    ``loader.at_least(row, need)`` a :class:`ModelImage` decoded at the smallest JPEG DCT
    scale that keeps both sides at least ``need(width, height)``.  Neither computes the
    file's sha256 (curation recorded it); bad files raise ``ImageRejected`` like curation.
    """

    def __init__(self, s3=None):
        self.s3 = s3

    def __call__(self, row: dict) -> np.ndarray:
        return load_model_image(row["image_uri"], self.s3).pixels

    def at_least(self, row: dict, need: Need | None) -> ModelImage:
        return load_model_image(row["image_uri"], self.s3, need)


def load_for_model(load_image: LoadImage, row: dict, need: Need | None = None) -> ModelImage:
    """The image of ``row`` for a model op: reduced when the loader offers ``at_least``."""
    at_least = getattr(load_image, "at_least", None)
    if at_least is None:
        return ModelImage.full(ensure_rgb(load_image(row), row.get("image_id", "?")))
    image = at_least(row, need)
    ensure_rgb(image.pixels, row.get("image_id", "?"))  # same contract as a plain loader
    return image


def as_chw(pixels: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``[3, H, W]`` uint8 view (channels-last memory: the layout the
    CPU uint8 resize kernels are fastest on; no copy)."""
    return torch.from_numpy(pixels).permute(2, 0, 1)


def resize(image: torch.Tensor, size: tuple[int, int], interpolation=BILINEAR) -> torch.Tensor:
    """Antialiased resize of a uint8 ``[..., 3, H, W]`` tensor to ``size`` = (H, W), uint8 out.

    torchvision's resize, as the transformers processors call it: on the CPU its uint8
    bilinear/bicubic kernels (several times faster than float), elsewhere float + rounding.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return tvF.resize(image, list(size), interpolation=interpolation, antialias=True)


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 ``(x / 255 - mean) / std`` (the processors' fused rescale)."""
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(3, 1, 1) * 255.0
    return (image.float() - m) / s


def stacked_inputs(batch: list[dict], to_input: Callable[[dict, torch.device], torch.Tensor],
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Stack each item's ``"input"`` (already made in the prefetch thread, CPU runs), or make it
    now on ``device`` from the item's uint8 pixels (accelerator runs)."""
    xs = [b["input"] if b.get("input") is not None else to_input(b, device) for b in batch]
    return torch.stack(xs).to(device, dtype)


def prepare_input(item: dict, to_input: Callable[[dict, torch.device], torch.Tensor], device: torch.device) -> dict:
    """On a CPU run, make the model input in the calling (prefetch) thread; see :func:`stacked_inputs`."""
    item["input"] = to_input(item, device) if device.type == "cpu" else None
    return item
