"""The hostile-input corpus: one small source per case, generated here (no binaries checked in).

Every case starts from the same clean Objects365-format source (three 96x64 photos, a person
and a chair in each) or a PixMo/OpenImages one, breaks one thing, and states the exact outcome:
an error naming the file (and column, where there is one), a quarantine row with its reason
code, or the input kept with the value it must have.  ``python -m sf_platform_tests.hostile.corpus``
rewrites ``CASES.md`` (case -> outcome) from the same list the tests run.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from sf_platform.config import SourceConfig

W, H = 96, 64


# --- what a case expects ----------------------------------------------------------------------
@dataclass(frozen=True)
class Quarantined:
    kind: str  # image | object | keypoints
    key: str  # image_id (kind image) or object_id
    reason: str
    first_entry_kept: bool = False  # a duplicate id: the first entry of ``key`` stays published

    def describe(self) -> str:
        return f"quarantine `{self.reason}` ({self.kind} {self.key})"


@dataclass(frozen=True)
class Raises:
    error: str  # exception class name
    names: tuple[str, ...]  # what the message must contain (the file, the column, ...)

    def describe(self) -> str:
        return f"`{self.error}` naming " + ", ".join(f"`{n}`" for n in self.names)


@dataclass(frozen=True)
class Kept:
    object_id: str
    values: tuple = ()  # (column, expected value) pairs of the curated object
    image: tuple = ()  # (column, expected value) pairs of its curated image

    def describe(self) -> str:
        shown = ", ".join(f"{k} = {v!r}" for k, v in self.values + self.image)
        return f"kept: object {self.object_id}" + (f" with {shown}" if shown else "")


@dataclass(frozen=True)
class Warns:
    text: str

    def describe(self) -> str:
        return f'index summary warning: "{self.text}..."'


# --- the source a case mutates --------------------------------------------------------------------
@dataclass
class Corpus:
    """A clean Objects365-style source under ``root``; cases edit ``doc`` and ``files``."""

    root: Path
    doc: dict = field(default_factory=dict)
    keypoints: dict | None = None
    photos: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    links: dict[str, str] = field(default_factory=dict)  # file name -> symlink target
    raw_annotations: bytes | None = None  # replaces the JSON document when set
    kind: str = "objects365"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        images, anns = [], []
        for i in (1, 2, 3):
            name = f"{i:06d}.jpg"
            images.append({"id": i, "file_name": name, "width": W, "height": H})
            self.photos[name] = jpeg()
            anns.append(box(i * 10 + 1, i, 1, [10.0, 10.0, 20.0, 40.0]))
            anns.append(box(i * 10 + 2, i, 2, [50.0, 20.0, 30.0, 30.0]))
        cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "chair"}]
        self.doc = {"images": images, "annotations": anns, "categories": cats}

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    def ann(self, object_id: int) -> dict:
        return next(a for a in self.doc["annotations"] if a["id"] == object_id)

    def image(self, image_id: int) -> dict:
        return next(im for im in self.doc["images"] if im["id"] == image_id)

    def write(self) -> SourceConfig:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        for name, data in self.photos.items():
            path = self.images_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for name, target in self.links.items():
            path = self.images_dir / name
            if path.exists() or path.is_symlink():
                path.unlink()
            os.symlink(target, path)
        if self.kind == "pixmo":
            return self._write_pixmo()
        if self.kind == "openimages":
            return self._write_openimages()
        ann = self.root / "annotations.json"
        ann.write_bytes(self.raw_annotations or json.dumps(self.doc).encode())
        kp = None
        if self.keypoints is not None:
            kp = self.root / "keypoints.json"
            kp.write_text(json.dumps(self.keypoints))
        return SourceConfig(
            name="hostile",
            format="objects365",
            images=str(self.images_dir),
            annotations=str(ann),
            keypoints=str(kp) if kp else None,
            shard_size=100,
        )

    def _write_pixmo(self) -> SourceConfig:
        path = self.root / "pixmo.parquet"
        pq.write_table(self.extra["table"], path)
        return SourceConfig(
            name="hostile",
            format="pixmo",
            images=str(self.images_dir),
            annotations=str(path),
            shard_size=100,
        )

    def _write_openimages(self) -> SourceConfig:
        boxes, classes = self.root / "boxes.csv", self.root / "classes.csv"
        boxes.write_bytes(self.extra["boxes"])
        classes.write_bytes(self.extra["classes"])
        return SourceConfig(
            name="hostile",
            format="openimages",
            images=str(self.images_dir),
            annotations=str(boxes),
            classes=str(classes),
            shard_size=100,
        )


def box(object_id, image_id, category_id, xywh) -> dict:
    return {
        "id": object_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": xywh,
        "iscrowd": 0,
        "isfake": 0,
        "isreflected": 0,
    }


def jpeg(size=(W, H), mode="RGB", exif_orientation: int | None = None, fmt="JPEG") -> bytes:
    im = Image.new(mode, size, 128 if mode in ("L", "I;16", "P", "CMYK") else (90, 140, 200))
    buf = io.BytesIO()
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png(mode: str, size=(W, H)) -> bytes:
    fill = {"RGBA": (10, 20, 30, 0), "LA": (90, 0), "I;16": 40000, "P": 3}.get(mode, 128)
    buf = io.BytesIO()
    Image.new(mode, size, fill).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG signature and IHDR declaring ``width`` x ``height``, almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4))


def skeleton(object_id, image_id, xywh) -> dict:
    """A COCO person skeleton (17 labelled points down the middle of the box)."""
    x, y, w, h = xywh
    pts: list[float] = []
    for k in range(17):
        pts += [x + w / 2, y + h * (k + 1) / 18, 2]
    return {
        "id": object_id,
        "image_id": image_id,
        "bbox": xywh,
        "keypoints": pts,
        "num_keypoints": 17,
        "category_id": 1,
    }


def keypoint_doc(c: Corpus, names: dict[int, str], id_offset: int) -> dict:
    """A COCO keypoints file for every person box of ``c``: image ``i`` is named ``names[i]``
    and has id ``i + id_offset`` there (another export of the same photos)."""
    anns = [
        skeleton(a["id"], a["image_id"] + id_offset, a["bbox"])
        for a in c.doc["annotations"]
        if a["category_id"] == 1
    ]
    images = [
        {"id": i + id_offset, "file_name": n, "width": W, "height": H} for i, n in names.items()
    ]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


# --- the cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    what: str
    mutate: Callable[[Corpus], None]
    expect: tuple  # Quarantined / Raises / Kept / Warns


def _set(path: Callable[[Corpus], dict], key: str, value) -> Callable[[Corpus], None]:
    return lambda c: path(c).__setitem__(key, value)


def _outside_file(c: Corpus, name: str, data: bytes) -> str:
    outside = c.root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / name).write_bytes(data)
    return str(outside / name)


def _symlink_outside(c: Corpus) -> None:
    c.photos.pop("000001.jpg")
    c.links["000001.jpg"] = _outside_file(c, "secret.jpg", jpeg())


def _symlink_passwd(c: Corpus) -> None:
    c.photos.pop("000001.jpg")
    c.links["000001.jpg"] = _outside_file(c, "passwd", b"root:x:0:0:root:/root:/bin/bash\n")


def _symlinked_folder(c: Corpus) -> None:
    c.links["mirror"] = str(c.images_dir)
    c.image(2)["file_name"] = "mirror/000001.jpg"  # same bytes as image 1, other annotations


def _all_missing(c: Corpus) -> None:
    c.photos.clear()


def _one_missing(c: Corpus) -> None:
    c.photos.pop("000003.jpg")


def _photo(name: str, data: bytes, **image) -> Callable[[Corpus], None]:
    def mutate(c: Corpus) -> None:
        c.photos[name] = data
        c.image(int(name[:6])).update(image)

    return mutate


def _exif(tag: int) -> Callable[[Corpus], None]:
    """Photo 1 stored rotated (raw 64x96) with EXIF ``tag``; its boxes annotated in the raw frame
    (COCO tools measure the stored pixels)."""

    def mutate(c: Corpus) -> None:
        swap = tag in (6, 8)
        raw = (H, W) if swap else (W, H)
        c.photos["000001.jpg"] = jpeg(raw, exif_orientation=tag)
        c.image(1).update(width=raw[0], height=raw[1])
        c.ann(11)["bbox"] = [4.0, 6.0, 10.0, 20.0]

    return mutate


# The person box [4, 6, 10, 20] (xywh) of a rotated photo, in the displayed frame.
# Tag 6 shows the stored 64x96 pixels turned 90 degrees clockwise: stored (x, y) is displayed
# at (96 - y, x); tag 8 turns them counter-clockwise, (x, y) -> (y, 64 - x); tag 3 turns the
# 96x64 pixels by 180 degrees, (x, y) -> (96 - x, 64 - y).
_ORIENTED = {6: [70.0, 4.0, 90.0, 14.0], 8: [6.0, 50.0, 26.0, 60.0], 3: [82.0, 38.0, 92.0, 58.0]}


def _category(name: str) -> Callable[[Corpus], None]:
    return lambda c: c.doc["categories"][1].__setitem__("name", name)


def _truncated_json(c: Corpus) -> None:
    c.raw_annotations = json.dumps(c.doc).encode()[:-40]


def _top_level_array(c: Corpus) -> None:
    c.raw_annotations = json.dumps(c.doc["annotations"]).encode()


def _pixmo(points_type: str, label: str = "cup") -> Callable[[Corpus], None]:
    def mutate(c: Corpus) -> None:
        c.kind = "pixmo"
        c.photos = {"ab" * 32 + ".jpg": jpeg()}
        points = (
            [json.dumps([{"x": 10, "y": 10}])]
            if points_type == "string"
            else [[{"x": 10.0, "y": 10.0}]]
        )
        c.extra["table"] = pa.table(
            {
                "image_url": ["https://x.invalid/a.jpg"],
                "image_sha256": ["ab" * 32],
                "points": points,
                "label": [label],
                "count": [1],
            }
        )

    return mutate


_OI_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
_OI_ROW = "00aa00bb00cc00dd,xclick,/m/01,1,0.25,0.75,0.25,0.75,0,0,0,0,0"


def _openimages(lines: list[str], bom: bool = False, eol: str = "\n") -> Callable[[Corpus], None]:
    """An OpenImages source of one photo whose box CSV is ``lines``."""

    def mutate(c: Corpus) -> None:
        c.kind = "openimages"
        c.photos = {"00aa00bb00cc00dd.jpg": jpeg()}
        prefix = b"\xef\xbb\xbf" if bom else b""
        c.extra["boxes"] = prefix + (eol.join(lines) + eol).encode()
        c.extra["classes"] = prefix + f"/m/01,Chair{eol}".encode()

    return mutate


def _keypoints(names: dict[int, str], id_offset: int) -> Callable[[Corpus], None]:
    return lambda c: setattr(c, "keypoints", keypoint_doc(c, names, id_offset))


def _escaping_keypoint(c: Corpus) -> None:
    c.keypoints = keypoint_doc(c, {1: "../outside/000001.jpg"}, 100)
    c.keypoints["annotations"] = c.keypoints["annotations"][:1]


def _q(kind, key, reason):
    return (Quarantined(kind, key, reason),)


CASES: tuple[Case, ...] = (
    # --- file names and links
    Case(
        "dotdot_file_name",
        "`file_name` `../outside.jpg`",
        _set(lambda c: c.image(1), "file_name", "../outside.jpg"),
        _q("image", "1", "path_escape"),
    ),
    Case(
        "absolute_file_name",
        "`file_name` `/etc/passwd`",
        _set(lambda c: c.image(1), "file_name", "/etc/passwd"),
        _q("image", "1", "path_escape"),
    ),
    Case(
        "windows_drive_name",
        "`file_name` `C:\\x.jpg`",
        _set(lambda c: c.image(1), "file_name", "C:\\x.jpg"),
        _q("image", "1", "path_escape"),
    ),
    Case(
        "url_file_name",
        "`file_name` `http://evil.invalid/x.jpg`",
        _set(lambda c: c.image(1), "file_name", "http://evil.invalid/x.jpg"),
        _q("image", "1", "path_escape"),
    ),
    Case(
        "nul_in_file_name",
        "NUL byte in `file_name`",
        _set(lambda c: c.image(1), "file_name", "0\x00.jpg"),
        _q("image", "1", "path_escape"),
    ),
    Case(
        "symlink_out_of_root",
        "`000001.jpg` -> `../outside/secret.jpg`",
        _symlink_outside,
        _q("image", "1", "path_escape"),
    ),
    Case(
        "symlink_to_passwd",
        "`000001.jpg` -> a copy of `/etc/passwd` outside the root",
        _symlink_passwd,
        _q("image", "1", "path_escape"),
    ),
    Case(
        "symlinked_folder",
        "image 2 is `mirror/000001.jpg`, `mirror` -> the images folder",
        _symlinked_folder,
        _q("image", "2", "duplicate_image"),
    ),
    Case(
        "one_image_missing",
        "photo 3 deleted after indexing",
        _one_missing,
        _q("image", "3", "missing_image"),
    ),
    Case(
        "images_folder_gone",
        "every photo gone (folder moved)",
        _all_missing,
        (Raises("ImagesUnavailable", ("none of the 3 images", "images")),),
    ),
    # --- image files
    Case(
        "zero_byte_image",
        "photo of 0 bytes",
        _photo("000001.jpg", b""),
        _q("image", "1", "empty_file"),
    ),
    Case(
        "truncated_jpeg",
        "JPEG missing its last 50 bytes",
        _photo("000001.jpg", jpeg()[:-50]),
        _q("image", "1", "truncated_image"),
    ),
    Case(
        "jpeg_header_only",
        "JPEG cut to its first 300 bytes",
        _photo("000001.jpg", jpeg()[:300]),
        _q("image", "1", "corrupt_image"),
    ),
    Case(
        "html_as_jpeg",
        "an HTML error page saved as `.jpg`",
        _photo("000001.jpg", b"<html><body>403</body></html>"),
        _q("image", "1", "not_an_image"),
    ),
    Case(
        "bomb_header",
        "PNG header declaring 30000x30000",
        _photo("000001.jpg", bomb_png()),
        _q("image", "1", "decompression_bomb"),
    ),
    Case(
        "one_pixel_image",
        "1x1 photo",
        _photo("000001.jpg", jpeg((1, 1)), width=1, height=1),
        _q("image", "1", "too_small"),
    ),
    Case(
        "png_16bit_gray",
        "16-bit grayscale PNG",
        _photo("000001.jpg", png("I;16")),
        (Kept("11", image=(("mode", "I;16"),)),),
    ),
    Case(
        "png_palette",
        "palette PNG",
        _photo("000001.jpg", png("P")),
        (Kept("11", image=(("mode", "P"),)),),
    ),
    Case(
        "png_rgba",
        "RGBA PNG, fully transparent",
        _photo("000001.jpg", png("RGBA")),
        (Kept("11", image=(("mode", "RGBA"),)),),
    ),
    Case(
        "png_gray_alpha",
        "LA PNG",
        _photo("000001.jpg", png("LA")),
        (Kept("11", image=(("mode", "LA"),)),),
    ),
    Case(
        "cmyk_jpeg",
        "CMYK JPEG",
        _photo("000001.jpg", jpeg(mode="CMYK")),
        (Kept("11", image=(("mode", "CMYK"),)),),
    ),
    *(
        Case(
            f"exif_orientation_{t}",
            f"photo stored rotated with EXIF orientation {t}, box in the stored frame",
            _exif(t),
            (Kept("11", values=(("bbox_px", _ORIENTED[t]),), image=(("exif_orientation", t),)),),
        )
        for t in (6, 8, 3)
    ),
    # --- boxes and numbers
    Case(
        "box_5000px_wide",
        "box 5000 px wide on a 96 px photo",
        _set(lambda c: c.ann(12), "bbox", [50.0, 20.0, 5000.0, 30.0]),
        _q("object", "12", "box_outside_image"),
    ),
    Case(
        "box_width_1e308",
        "box width 1e308",
        _set(lambda c: c.ann(12), "bbox", [50.0, 20.0, 1e308, 30.0]),
        _q("object", "12", "box_outside_image"),
    ),
    Case(
        "box_entirely_outside",
        "box to the right of the photo",
        _set(lambda c: c.ann(12), "bbox", [200.0, 20.0, 30.0, 30.0]),
        _q("object", "12", "box_outside_image"),
    ),
    Case(
        "box_rounding_overshoot",
        "box 1.5 px past the right edge",
        _set(lambda c: c.ann(12), "bbox", [50.0, 20.0, 47.5, 30.0]),
        (Kept("12", values=(("bbox_px", [50.0, 20.0, 96.0, 50.0]), ("is_truncated", True))),),
    ),
    Case(
        "box_nan",
        "box with a NaN",
        _set(lambda c: c.ann(12), "bbox", [float("nan"), 20.0, 30.0, 30.0]),
        _q("object", "12", "nan_box"),
    ),
    Case(
        "box_three_numbers",
        "bbox of 3 numbers",
        _set(lambda c: c.ann(12), "bbox", [50.0, 20.0, 30.0]),
        _q("object", "12", "nan_box"),
    ),
    Case(
        "box_negative_width",
        "negative width",
        _set(lambda c: c.ann(12), "bbox", [50.0, 20.0, -30.0, 30.0]),
        _q("object", "12", "degenerate_box"),
    ),
    Case(
        "width_1e12",
        "image `width` 10^12 (int64)",
        _set(lambda c: c.image(1), "width", 10**12),
        _q("image", "1", "value_overflow"),
    ),
    Case(
        "annotation_id_1e30",
        "annotation id 10^30",
        _set(lambda c: c.ann(12), "id", 10**30),
        _q("object", str(10**30), "value_overflow"),
    ),
    Case(
        "image_id_1e30",
        "image id 10^30",
        lambda c: (
            [c.image(1).__setitem__("id", 10**30)]
            + [
                a.__setitem__("image_id", 10**30)
                for a in c.doc["annotations"]
                if a["image_id"] == 1
            ]
        ),
        _q("image", str(10**30), "value_overflow"),
    ),
    Case(
        "duplicate_image_id",
        "two entries with image id 2",
        lambda c: c.doc["images"].append(
            {"id": 2, "file_name": "000003.jpg", "width": W, "height": H}
        ),
        (
            Quarantined("image", "2", "duplicate_image_id", first_entry_kept=True),
            Kept("22", image=(("file_name", "000002.jpg"),)),
        ),
    ),
    Case(
        "unknown_image_id",
        "annotation of image 99",
        _set(lambda c: c.ann(12), "image_id", 99),
        _q("object", "12", "unknown_image"),
    ),
    # --- category names
    Case(
        "name_newline_tab",
        "category `chair\\n\\tleg`",
        _category("chair\n\tleg"),
        (Kept("12", values=(("category", "chair leg"),)),),
    ),
    Case(
        "name_bidi_override",
        "category `\\u202eriahc`",
        _category("\u202eriahc"),
        (Kept("12", values=(("category", "riahc"),)),),
    ),
    Case(
        "name_markup",
        "category `<script>x</script>chair`",
        _category("<script>x</script>chair"),
        (Kept("12", values=(("category", "x chair"),)),),
    ),
    Case(
        "name_quotes",
        'category `"chair"`',
        _category('"chair"'),
        (Kept("12", values=(("category", "chair"),)),),
    ),
    Case(
        "name_empty_after_cleaning",
        "category of zero-width spaces and quotes",
        _category("\u200b\"\u200b'"),
        _q("object", "12", "bad_category_name"),
    ),
    # --- keypoints
    Case(
        "keypoints_by_stem",
        "keypoint file names images `images/<stem>.jpg`, other ids",
        _keypoints({1: "images/000001.jpg", 2: "images/000002.jpg", 3: "images/000003.jpg"}, 100),
        (Kept("11", values=(("has_keypoints", True),)),),
    ),
    Case(
        "keypoints_match_nothing",
        "keypoint file of other photos (other names and ids)",
        _keypoints({1: "x1.jpg", 2: "x2.jpg", 3: "x3.jpg"}, 100),
        (Warns("3 of 3 skeletons"), Quarantined("keypoints", "11", "unmatched_keypoints")),
    ),
    Case(
        "keypoint_path_escape",
        "keypoint image `../outside/000001.jpg`",
        _escaping_keypoint,
        _q("keypoints", "11", "path_escape"),
    ),
    # --- annotation files
    Case(
        "truncated_json",
        "annotation JSON cut 40 bytes short",
        _truncated_json,
        (Raises("SourceInputError", ("annotations.json",)),),
    ),
    Case(
        "json_top_level_array",
        "annotation JSON is an array, not an object",
        _top_level_array,
        (Raises("SourceInputError", ("annotations.json",)),),
    ),
    Case(
        "pixmo_points_as_string",
        "PixMo Parquet with `points` as JSON text",
        _pixmo("string"),
        (Raises("SourceInputError", ("pixmo.parquet", "'points'")),),
    ),
    Case(
        "pixmo_label_markup",
        "PixMo label `<b>cup</b>\\n` (also the image's count label)",
        _pixmo("list", "<b>cup</b>\n"),
        (Kept("ab" * 32 + "-0", values=(("category", "cup"),), image=(("count_label", "cup"),)),),
    ),
    Case(
        "openimages_missing_column",
        "OpenImages box CSV without `LabelName`",
        _openimages([_OI_HEADER.replace("LabelName,", ""), _OI_ROW.replace("/m/01,", "")]),
        (Raises("SourceInputError", ("boxes.csv", "LabelName")),),
    ),
    Case(
        "openimages_short_row",
        "OpenImages box CSV whose third line has 6 fields",
        _openimages([_OI_HEADER, _OI_ROW, "00aa00bb00cc00de,xclick,/m/01,1,0.1,0.2"]),
        (Raises("SourceInputError", ("boxes.csv", "Row #3")),),
    ),
    Case(
        "openimages_bom_crlf",
        "OpenImages CSVs with a UTF-8 BOM and CRLF line ends",
        _openimages([_OI_HEADER, _OI_ROW], bom=True, eol="\r\n"),
        (
            Kept(
                "00aa00bb00cc00dd-0",
                values=(("category", "Chair"), ("bbox_px", [24.0, 16.0, 72.0, 48.0])),
            ),
        ),
    ),
)


def cases_markdown() -> str:
    lines = [
        "<!-- generated by `python -m sf_platform_tests.hostile.corpus` from CASES; do not edit -->",
        "",
        "| case | hostile input | outcome |",
        "|---|---|---|",
    ]
    for case in CASES:
        outcome = "; ".join(e.describe() for e in case.expect)
        lines.append(f"| `{case.id}` | {case.what} | {outcome} |")
    return "\n".join(lines) + "\n"


CASES_MD = Path(__file__).with_name("CASES.md")

if __name__ == "__main__":
    CASES_MD.write_text(cases_markdown())
    print(f"wrote {CASES_MD} ({len(CASES)} cases)")
