"""Image vetting: each rejection reason, each colour mode, EXIF orientation."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from sf_platform.core.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    ModelImage,
    decode_for_model,
    decode_image,
    load_model_image,
    load_oriented_rgb,
)


def encode(im: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(w: int = 96, h: int = 64) -> Image.Image:
    """A non-flat test picture (gradients + noise), so JPEG streams have real content."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=2)
    a = np.clip(a + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def rejected(data: bytes, **kw) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        decode_image(data, **kw)
    return info.value


def png_with_header_size(w: int, h: int) -> bytes:
    """A real small PNG whose IHDR claims w x h (CRC fixed), like a crafted bomb."""
    data = bytearray(encode(photo(8, 8), "PNG"))
    ihdr = 8 + 8  # signature, then length + type of the first chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", w, h)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def jpeg_with_header_size(w: int, h: int) -> bytes:
    data = bytearray(encode(photo(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


@pytest.mark.parametrize("pixels", [True, False])
def test_good_jpeg(pixels):
    data = encode(photo(96, 64))
    d = decode_image(data, pixels=pixels)
    assert (d.width, d.height, d.raw_width, d.raw_height) == (96, 64, 96, 64)
    assert d.orientation == 1 and d.mode == "RGB" and d.format == "JPEG"
    import hashlib

    assert d.sha256 == hashlib.sha256(data).hexdigest()
    if pixels:
        assert d.image.shape == (64, 96, 3) and d.image.dtype == np.uint8
    else:
        assert d.image is None


def test_empty_file():
    assert rejected(b"").reason == "empty_file"


def test_not_an_image():
    assert rejected(b"<html><body>404 Not Found</body></html>").reason == "not_an_image"


@pytest.mark.parametrize("pixels", [True, False])
@pytest.mark.parametrize("cut", [0.5, 0.9, -2])
def test_truncated_jpeg(pixels, cut):
    data = encode(photo(256, 192), quality=95)
    end = int(len(data) * cut) if cut > 0 else len(data) + cut
    assert rejected(data[:end], pixels=pixels).reason == "truncated_image"


def test_truncated_progressive_jpeg_and_png():
    prog = encode(photo(256, 192), progressive=True, quality=95)
    assert rejected(prog[: len(prog) // 2], pixels=False).reason == "truncated_image"
    png = encode(photo(256, 192), "PNG")
    assert rejected(png[: len(png) // 2]).reason == "truncated_image"


@pytest.mark.parametrize("make", [png_with_header_size, jpeg_with_header_size])
def test_decompression_bomb_rejected_from_header(make):
    err = rejected(make(30000, 30000))
    assert err.reason == "decompression_bomb"
    # Under the limit but still huge: our own limit applies before Pillow's.
    assert rejected(make(9000, 8000)).reason == "decompression_bomb"
    assert 9000 * 8000 > DEFAULT_MAX_PIXELS > 8000 * 6000


def test_too_small():
    assert rejected(encode(Image.new("RGB", (1, 1)), "PNG")).reason == "too_small"
    assert rejected(encode(photo(200, 20))).reason == "too_small"
    assert decode_image(encode(photo(200, 20)), min_side=16).height == 20


def test_corrupt_stream():
    data = bytearray(encode(photo(128, 128), "PNG"))
    data[60:80] = b"\x00" * 20  # inside the first IDAT: zlib stream broken
    err = rejected(bytes(data))
    assert err.reason in ("corrupt_image", "truncated_image")


def _modes() -> dict[str, Image.Image]:
    base = photo(64, 48)
    gray16 = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257).astype(np.uint16))
    rgba = base.convert("RGBA")
    alpha = np.asarray(rgba).copy()
    alpha[:, :32, 3] = 0  # left half fully transparent
    alpha[:, :32, :3] = 0  # ... over black, as many cut-outs are
    return {
        "I;16": gray16,
        "CMYK": base.convert("CMYK"),
        "P": base.convert("P"),
        "L": base.convert("L"),
        "RGBA": Image.fromarray(alpha, "RGBA"),
        "LA": base.convert("LA"),
    }


@pytest.mark.parametrize("mode", ["I;16", "CMYK", "P", "L", "RGBA", "LA"])
def test_modes_convert_to_rgb(mode):
    im = _modes()[mode]
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "LA" else "PNG")
    data = encode(im, fmt)
    d = decode_image(data)
    assert d.mode == mode
    assert d.image.shape == (48, 64, 3) and d.image.dtype == np.uint8
    ref = np.asarray(photo(64, 48).convert("L"), np.float64)
    got = d.image.astype(np.float64).mean(axis=2)
    if mode == "RGBA":
        assert np.all(d.image[:, :32] == 255)  # transparent -> white, not black
        assert np.abs(got[:, 32:] - ref[:, 32:]).mean() < 25
    else:
        assert np.abs(got - ref).mean() < 25  # same picture, not a blank or inverted one
    assert decode_image(data, pixels=False).mode == mode


def test_sixteen_bit_scaled_not_clipped():
    a = np.full((40, 40), 40000, np.uint16)
    d = decode_image(encode(Image.fromarray(a), "PNG"))
    assert d.mode.startswith("I;16")
    assert np.all(d.image == 40000 >> 8)  # 156, where a naive clip would give 255


@pytest.mark.parametrize("tag", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_matches_exif_transpose(tag):
    im = photo(96, 64)
    exif = Image.Exif()
    exif[0x0112] = tag
    data = encode(im, quality=95, exif=exif.tobytes())
    d = decode_image(data)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert d.orientation == tag
    assert (d.raw_width, d.raw_height) == (96, 64)
    assert (d.width, d.height) == ((64, 96) if tag >= 5 else (96, 64))
    assert d.image.shape == want.shape
    np.testing.assert_array_equal(d.image, want)
    assert decode_image(data, pixels=False).width == d.width


def test_invalid_orientation_counts_as_none():
    exif = Image.Exif()
    exif[0x0112] = 9
    d = decode_image(encode(photo(), exif=exif.tobytes()))
    assert d.orientation == 1 and (d.width, d.height) == (96, 64)


def test_load_oriented_rgb_local_and_s3(tmp_path, s3_endpoint, s3_bucket):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photo(96, 64), exif=exif.tobytes())
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    local = load_oriented_rgb(str(path))
    assert local.shape == (96, 64, 3)
    import boto3

    from sf_platform.config import S3Config

    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=s3_bucket, Key="img/a.jpg", Body=data
    )
    remote = load_oriented_rgb(f"s3://{s3_bucket}/img/a.jpg", S3Config(endpoint_url=s3_endpoint))
    np.testing.assert_array_equal(local, remote)
    with pytest.raises(ImageRejected):
        path.write_bytes(b"")
        load_oriented_rgb("file://" + str(path))


# --- decode_for_model: the perception ops' lean, possibly reduced decode ------------------------


def _smooth(w: int, h: int) -> Image.Image:
    """A smooth picture: a reduced decode of it is close to a downscale of the full decode."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=2)
    return Image.fromarray(a.astype(np.uint8))


def test_decode_for_model_full_size_equals_decode_image():
    data = encode(photo(96, 64))
    m = decode_for_model(data)
    np.testing.assert_array_equal(m.pixels, decode_image(data).image)
    assert (m.width, m.height, m.scale) == (96, 64, (1.0, 1.0))
    assert m.pixels.flags.c_contiguous and m.pixels.flags.writeable


@pytest.mark.parametrize("tag", [1, 6, 8])
def test_decode_for_model_reduces_jpegs_in_the_oriented_frame(tag):
    """The op asks in the displayed frame; the pixels are the displayed image at 1/k, and the
    recorded size stays the full displayed size (the frame of boxes and points)."""
    exif = Image.Exif()
    exif[0x0112] = tag
    data = encode(_smooth(512, 256), quality=95, exif=exif.tobytes())
    full = decode_image(data).image
    asked = []

    def need(width, height):
        asked.append((width, height))
        return width // 4, height // 4

    m = decode_for_model(data, need)
    assert asked == [(full.shape[1], full.shape[0])]
    assert (m.width, m.height) == (full.shape[1], full.shape[0])
    assert m.pixels.shape == (full.shape[0] // 4, full.shape[1] // 4, 3)
    assert m.scale == (0.25, 0.25)
    down = np.asarray(Image.fromarray(full).reduce(4)).astype(int)
    assert np.abs(m.pixels.astype(int) - down).mean() < 3  # same picture, same orientation


def test_decode_for_model_keeps_at_least_the_needed_size():
    data = encode(_smooth(400, 300))
    assert decode_for_model(data, lambda w, h: (201, 10)).pixels.shape[:2] == (300, 400)  # 1/2 would be 200 < 201
    assert decode_for_model(data, lambda w, h: (200, 150)).pixels.shape[:2] == (150, 200)
    assert decode_for_model(data, lambda w, h: (1, 1)).pixels.shape[:2] == (38, 50)  # 1/8 is the limit
    png = encode(_smooth(400, 300), "PNG")  # only JPEG has DCT scaling
    assert decode_for_model(png, lambda w, h: (50, 38)).pixels.shape[:2] == (300, 400)


@pytest.mark.parametrize("bad, reason", [(b"", "empty_file"), (b"<html>", "not_an_image")])
def test_decode_for_model_rejects_like_decode_image(bad, reason):
    with pytest.raises(ImageRejected) as info:
        decode_for_model(bad, lambda w, h: (8, 8))
    assert info.value.reason == reason


def test_decode_for_model_reduced_still_finds_truncation():
    data = encode(_smooth(512, 384))
    with pytest.raises(ImageRejected) as info:
        decode_for_model(data[: len(data) // 2], lambda w, h: (64, 48))
    assert info.value.reason == "truncated_image"
    with pytest.raises(ImageRejected) as info:
        decode_for_model(jpeg_with_header_size(20000, 20000), lambda w, h: (64, 48))
    assert info.value.reason == "decompression_bomb"


def test_load_model_image_reads_uris(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(encode(_smooth(256, 128)))
    m = load_model_image(path.as_uri(), None, lambda w, h: (64, 32))
    assert isinstance(m, ModelImage) and m.pixels.shape == (32, 64, 3) and (m.width, m.height) == (256, 128)
    np.testing.assert_array_equal(load_model_image(str(path)).pixels, load_oriented_rgb(str(path)))
