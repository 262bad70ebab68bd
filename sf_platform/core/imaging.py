"""Decode and vet one image file: size limits, truncation, EXIF orientation, colour modes.

Every photo passes through :func:`decode_image` before it enters the platform, so this is where
a bad file becomes a quarantine reason instead of a crash three stages later.  The checks run
in the order that costs least first: empty file, header (format, size limits), then the full
entropy decode (which is what finds truncation), then colour conversion.

Reason codes of :class:`ImageRejected` (the ``reason`` column of the quarantine table):

- ``empty_file``: zero bytes.
- ``not_an_image``: no image format recognises the header (HTML error pages saved as .jpg, ...).
- ``decompression_bomb``: the header declares more than ``max_pixels`` pixels; refused before
  a single pixel is decoded, so a 30000x30000 header cannot allocate 2.7 GB.
- ``too_small``: shorter side under ``min_side`` pixels (tracking pixels, placeholders).
- ``truncated_image``: the compressed data ends before the image does.
- ``corrupt_image``: the decoder fails on the data for another reason (broken stream).
- ``unsupported_mode``: a pixel mode that cannot be converted to RGB.

Colour handling: every mode is converted to 8-bit RGB, nothing is dropped for its mode.
16-bit grayscale ("I;16*", "I") keeps its top 8 bits (a linear rescale of the 0..65535
range; no auto-contrast, which would make the same file decode differently from its
neighbours); "F" is min-max scaled; CMYK and palette go through Pillow's conversion.  Images
with alpha (RGBA, LA, PA, palette with transparency) are composited on WHITE: the colour
under fully transparent pixels is undefined and often black, so dropping alpha turns cut-out
product photos and logos into black rectangles, while white is how viewers display them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from sf_platform.core.near_duplicates import perceptual_hash

# 64 megapixels: above any camera photo in the sources (48-MP phone photos are 8000x6000;
# Objects365/OpenImages originals are <= ~12 MP), while one decoded RGB buffer stays at
# 192 MB, so 4 decode threads per worker fit in well under 1 GB.  Pillow's own limit
# (89 MP warning, 179 MP error) is higher, so ours triggers first.
DEFAULT_MAX_PIXELS = 64_000_000
# 32 px: below that an image holds about one 28-px vision-token patch of Qwen2/3-VL, so
# no box in it can be told apart on the [0,1000] grid; such files are web placeholders and
# tracking pixels (1x1 GIFs), not photos.
DEFAULT_MIN_SIDE = 32

REASONS = (
    "empty_file",
    "not_an_image",
    "decompression_bomb",
    "too_small",
    "truncated_image",
    "corrupt_image",
    "unsupported_mode",
)

ORIENTATION_TAG = 0x0112
# The transpose that displays a stored image, per EXIF orientation (exif_transpose's table).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes whose RGB conversion cannot fail, so validation may skip doing it.
_SAFE_MODES = frozenset(
    {"RGB", "L", "CMYK", "YCbCr", "P", "RGBA", "LA", "PA", "1", "RGBX", "I;16", "I", "F"}
)


class ImageRejected(ValueError):
    """An image that cannot be used; ``reason`` is a code of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedImage:
    width: int  # after EXIF orientation
    height: int
    raw_width: int  # as stored
    raw_height: int
    orientation: int  # EXIF tag value 1..8 (1 when absent or invalid)
    mode: str  # original PIL mode ("RGB", "CMYK", "I;16", "P", ...)
    format: str | None  # "JPEG", "PNG", ...
    sha256: str  # of the file's bytes
    image: np.ndarray | None  # oriented HxWx3 uint8 RGB; None when decoded with pixels=False
    phash: int | None = None  # 64-bit perceptual hash, oriented frame (core.near_duplicates)

    @property
    def swaps_axes(self) -> bool:
        return self.orientation in (5, 6, 7, 8)


def _orientation(im: Image.Image) -> int:
    """EXIF Orientation 1..8; a missing, unreadable or out-of-range tag counts as 1 (as shown)."""
    try:
        value = im.getexif().get(ORIENTATION_TAG, 1)
        value = int(value)
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject an otherwise good photo
        return 1
    return value if 1 <= value <= 8 else 1


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB following the rules in the module docstring."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.int64)
        gray = (np.clip(a, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        lo, hi = float(a.min()), float(a.max())
        gray = (
            np.zeros(a.shape, np.uint8)
            if hi <= lo
            else ((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        )
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return _composite_on_white(im)
    if mode in ("L", "1") or mode == "P":
        return im.convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageRejected(
            "unsupported_mode", f"cannot convert mode {mode!r} to RGB: {exc}"
        ) from None


def _open_vetted(data: bytes, max_pixels: int, min_side: int) -> Image.Image:
    """Open ``data`` and vet its header (empty, not an image, bomb, too small); pixels not decoded."""
    if not data:
        raise ImageRejected("empty_file", "the file has zero bytes")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global flag: if someone set it, truncation is invisible
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; image validation needs it False"
        )
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected(
            "not_an_image", f"no image format recognises the file's header ({len(data):,} bytes)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected("decompression_bomb", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - crafted headers raise all sorts (struct.error, ...)
        raise ImageRejected("corrupt_image", f"unreadable header: {exc!r}") from None
    raw_w, raw_h = im.size
    if raw_w * raw_h > max_pixels:
        raise ImageRejected(
            "decompression_bomb",
            f"header declares {raw_w}x{raw_h} = {raw_w * raw_h:,} pixels, over the limit of {max_pixels:,}",
        )
    if min(raw_w, raw_h) < min_side:
        raise ImageRejected("too_small", f"{raw_w}x{raw_h} has a side under {min_side} px")
    return im


def _decode_vetted(im: Image.Image) -> None:
    """Entropy-decode ``im`` (at its draft scale), turning failures into reason codes."""
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected("decompression_bomb", str(exc)) from None
    except OSError as exc:
        reason = "truncated_image" if "truncated" in str(exc).lower() else "corrupt_image"
        raise ImageRejected(reason, f"decoding failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken stream must not crash the shard
        raise ImageRejected("corrupt_image", f"decoding failed: {exc!r}") from None


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    pixels: bool = True,
) -> DecodedImage:
    """Vet and decode one image file's bytes; raises :class:`ImageRejected` with a reason code.

    ``pixels=False`` validates without keeping pixels (curation): JPEGs are then decoded at
    1/8 scale with libjpeg's DCT scaling, which still entropy-decodes every block of the
    stream (so truncation and broken data are found) at about half the cost; ``image`` is None.
    """
    im = _open_vetted(data, max_pixels, min_side)
    raw_w, raw_h = im.size
    mode, fmt = im.mode, im.format
    if not pixels and fmt == "JPEG":
        im.draft(None, (max(raw_w // 8, 1), max(raw_h // 8, 1)))
    _decode_vetted(im)
    orientation = _orientation(im)
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    array = None
    if pixels:
        rgb = to_rgb(im)
        if orientation != 1:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
        array = np.asarray(rgb)
    elif mode not in _SAFE_MODES:
        to_rgb(im)  # rare exotic modes: prove the conversion works now, not in a GPU op
    # hashed from the pixels decoded here (draft scale is ample for 32x32): no second read
    phash = perceptual_hash(im if mode in ("RGB", "L") else to_rgb(im), _TRANSPOSE.get(orientation))
    return DecodedImage(
        width=width,
        height=height,
        raw_width=raw_w,
        raw_height=raw_h,
        orientation=orientation,
        mode=mode,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        image=array,
        phash=phash,
    )


@dataclass(frozen=True)
class ModelImage:
    """An oriented RGB image for a model op, possibly decoded at a reduced scale.

    ``pixels`` may be smaller than the photo (JPEG DCT scaling, see :func:`decode_for_model`);
    ``width`` / ``height`` stay the full oriented size, the frame of every box, point and
    stored output, so an op maps between the two with :attr:`scale`.
    """

    pixels: np.ndarray  # h x w x 3 uint8, C-contiguous and writeable (torch.from_numpy-ready)
    width: int  # full oriented size
    height: int

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) pixels of ``pixels`` per full-size pixel: 1.0, or about 1/2, 1/4, 1/8."""
        return self.pixels.shape[1] / self.width, self.pixels.shape[0] / self.height

    @classmethod
    def full(cls, pixels: np.ndarray) -> ModelImage:
        return cls(pixels, int(pixels.shape[1]), int(pixels.shape[0]))


def decode_for_model(
    data: bytes,
    need: Callable[[int, int], tuple[int, int]] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ModelImage:
    """Decode for a model op: the vetting of :func:`decode_image`, without its bookkeeping.

    ``need(width, height)`` -> (min_width, min_height): given the full oriented size, the
    smallest image the op will use (it resizes down to that).  A JPEG is then decoded with
    libjpeg's DCT scaling at the largest factor of 1/2, 1/4 or 1/8 that keeps both sides at
    least that big: the op downsamples anyway, DCT scaling skips most of the inverse
    transform and colour conversion (measured on a 1024x768 photo: 1/2 scale ~2.3 ms vs ~3.5 ms
    for a full decode), and every later step touches 4-64x fewer pixels.  Other formats, and
    ``need=None``, decode at full size.

    Unlike :func:`decode_image` no sha256 is computed (curation already recorded it) and the
    pixels are copied once into a writeable array, ready for ``torch.from_numpy``.
    """
    im = _open_vetted(data, max_pixels, min_side)
    raw_w, raw_h = im.size
    if need is not None and im.format == "JPEG":  # JPEG EXIF is in the header: no decode yet
        swaps = _orientation(im) in (5, 6, 7, 8)
        min_w, min_h = need(*((raw_h, raw_w) if swaps else (raw_w, raw_h)))
        raw_need = (min_h, min_w) if swaps else (min_w, min_h)
        im.draft(None, (max(int(np.ceil(raw_need[0])), 1), max(int(np.ceil(raw_need[1])), 1)))
    _decode_vetted(im)
    orientation = _orientation(im)
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    rgb = to_rgb(im)
    if orientation != 1:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    return ModelImage(np.array(rgb), width, height)


def load_model_image(uri: str, s3=None, need: Callable[[int, int], tuple[int, int]] | None = None) -> ModelImage:
    """:func:`decode_for_model` of the image at ``uri`` (local, file:// or s3://)."""
    return decode_for_model(_read(uri, s3), need)


def _read(uri: str, s3) -> bytes:
    from sf_platform.storage.object_store import read_uri

    endpoint = getattr(s3, "endpoint_url", None) if s3 is not None else None
    region = getattr(s3, "region", None) if s3 is not None else None
    return read_uri(uri, endpoint, region)


def load_oriented_rgb(uri: str, s3=None) -> np.ndarray:
    """HxWx3 uint8 RGB of the image at ``uri`` (local, file:// or s3://) as displayed.

    ``s3`` is a :class:`sf_platform.config.S3Config` (endpoint, region) or None.  Raises
    :class:`ImageRejected` for a bad file, like curation would have.
    """
    decoded = decode_image(_read(uri, s3))
    assert decoded.image is not None
    return decoded.image
