"""Spot-check gallery: sample QA pairs drawn on their images, so a person can judge by eye.

Each sample is the image (EXIF-oriented, as the boxes are defined), its mentioned objects'
``bbox_1000`` boxes mapped to pixels and drawn in distinct colours with their category, shrunk
to a thumbnail and encoded as JPEG; the question and answer go beneath it in the report.
Sampling is deterministic (seeded by the task name), spread over different images.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sf_platform.core.release_rows import image_ref

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"]
THUMB = 480  # longest side of a gallery image, pixels
LINE = 3  # box outline width in the thumbnail


@dataclass
class GallerySample:
    task: str
    qa_id: str
    image_uri: str
    question: str
    answer: str
    boxes: list[dict] = field(default_factory=list)  # {"category", "bbox_1000", "colour"}
    jpeg: bytes | None = None
    width: int = 0  # thumbnail size
    height: int = 0
    error: str | None = None  # why the image could not be shown
    image: str = ""  # portable reference <source>/<file_name>: what the report shows (no machine path)


def sample_rows(table: pa.Table, k: int, seed_text: str) -> list[dict]:
    """Up to ``k`` rows of ``table`` on distinct images, deterministic for a given seed text."""
    n = table.num_rows
    if not n:
        return []
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    order = np.random.default_rng(seed).permutation(n)
    uris = table.column("image_uri").to_pylist()
    picked, seen = [], set()
    for i in order:
        if uris[i] in seen:
            continue
        seen.add(uris[i])
        picked.append(int(i))
        if len(picked) == k:
            break
    cols = ["qa_id", "task", "image_uri", "source", "file_name", "question", "answer", "objects"]
    return table.select(cols).take(pa.array(picked, pa.int64())).to_pylist()


def draw_boxes(image_bytes: bytes, boxes: list[dict], thumb: int = THUMB) -> tuple[bytes, int, int]:
    """JPEG thumbnail of the image with ``boxes`` ([0,1000] grid) drawn on it."""
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(io.BytesIO(image_bytes)) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
    im.thumbnail((thumb, thumb))
    w, h = im.size
    draw = ImageDraw.Draw(im)
    for b in boxes:
        x1, y1, x2, y2 = b["bbox_1000"]
        px = (x1 * w / 1000, y1 * h / 1000, x2 * w / 1000, y2 * h / 1000)
        draw.rectangle(px, outline=b["colour"], width=LINE)
        label = b["category"] or "?"
        tx = px[0] + LINE
        ty = px[1] - 14 if px[1] >= 14 else px[1] + LINE  # label above the box, or inside at the top
        tw = draw.textlength(label)
        draw.rectangle((tx - 2, ty - 1, tx + tw + 2, ty + 12), fill=b["colour"])
        draw.text((tx, ty), label, fill="white")
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=85)
    return out.getvalue(), w, h


def build_gallery(
    qa_by_task: dict[str, pa.Table], load_image_bytes: Callable[[str], bytes], per_task: int = 6
) -> dict[str, list[GallerySample]]:
    """task -> samples with their thumbnails; an image that cannot be read becomes a sample with
    ``error`` set (shown as text in the report, never as a broken image)."""
    out: dict[str, list[GallerySample]] = {}
    for task, table in qa_by_task.items():
        samples = []
        for row in sample_rows(table, per_task, task):
            boxes = [
                {"category": o["category"], "bbox_1000": list(o["bbox_1000"]), "colour": COLOURS[i % len(COLOURS)]}
                for i, o in enumerate(row["objects"] or []) if o.get("bbox_1000") is not None and len(o["bbox_1000"]) == 4
            ]
            s = GallerySample(task=task, qa_id=row["qa_id"], image_uri=row["image_uri"], question=row["question"] or "",
                              answer=row["answer"] or "", boxes=boxes,
                              image=image_ref(row["source"] or "", row["file_name"]))
            try:
                s.jpeg, s.width, s.height = draw_boxes(load_image_bytes(row["image_uri"]), boxes)
            except Exception as exc:  # noqa: BLE001 - any unreadable image is shown as a note
                s.error = f"{type(exc).__name__}: {exc}".replace(row["image_uri"] or "", s.image)[:200]
            samples.append(s)
        out[task] = samples
    return out
