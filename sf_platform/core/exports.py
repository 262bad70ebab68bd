"""QA tables -> training records for Qwen-VL, InternVL and LLaVA, in the files each reads.

All three use the LLaVA-style record ``{"id", "image", "conversations": [{"from": "human",
"value": "<image>\\n..."}, {"from": "gpt", "value": ...}, ...]}`` with the ``<image>`` token
once, at the start of the first human turn (one image per record, so one token: Qwen-VL's and
LLaVA's loaders count tokens against images).

- ``image`` is ``"<source>/<file_name>"``: the image's path relative to its source's images
  root, prefixed by the source name (``"o365_val/images/000123.jpg"``).  Training code joins it
  with a folder holding one sub-folder per source (``images_root`` prefixes it instead); the
  release ships no images (the sources' licences apply to them).
- Qwen-VL: ``box_format="qwen3"`` keeps boxes as printed, ``[x1, y1, x2, y2]`` ints in
  [0, 1000] (Qwen3-VL's own convention), grounding answers as ``{"bbox_2d": [...], "label": ...}``
  JSON; ``"qwen25"`` rewrites every printed box into absolute pixels of the image as stored
  (EXIF-oriented ``width`` x ``height``), which Qwen2.5-VL trains on: ``round(v * W / 1000)``,
  within half a thousandth of the side of the exact pixel box.
- InternVL: adds ``"width"``/``"height"``; every object named by its box becomes
  ``<ref>the chair</ref><box>[[x1, y1, x2, y2]]</box>`` (their grounding data's spelling), any
  other printed box ``<box>[[x1, y1, x2, y2]]</box>``; grounding pairs use InternVL's own prompt ("Please provide
  the bounding box coordinate of the region this sentence describes: <ref>the chair</ref>")
  and answer ``<ref>chair</ref><box>[[...], ...]</box>`` (also [0, 1000]), since a question
  asking for JSON must not be answered with tags.
- LLaVA: the Qwen-VL record as is ([0, 1000] boxes; LLaVA-1.5's own [0, 1] padded-square
  boxes would need the image to re-pad, which the exports do not load).

``multi_turn=True`` packs up to ``max_turns`` QA pairs of one image (in qa_id order) into one
conversation; its id is the first pair's qa_id plus ``-mt<turns>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.templates import BY_ID
from sf_platform.core.release_rows import image_ref

FORMATS = ("qwen", "internvl", "llava")
BOX_FORMATS = ("qwen3", "qwen25")
# File each format's consolidated export is written as: LLaVA's LazySupervisedDataset does
# json.load(open(path)) (one JSON array); Qwen-VL's and InternVL's loaders read JSON Lines.
EXTENSIONS = {"qwen": "jsonl", "internvl": "jsonl", "llava": "json"}
IMAGE_TOKEN = "<image>"
_COLUMNS = (
    "template_id",
    "qa_id",
    "task",
    "source",
    "image_id",
    "file_name",
    "width",
    "height",
    "question",
    "answer",
    "objects",
    "fact",
)
_NAMED_BOX = re.compile(r"\b([Tt]he (?:(?!\b[Tt]he\b)[^\[\]])*?) at \[(\d+), (\d+), (\d+), (\d+)\]")
_BOX = re.compile(r"(?<!\[)\[(\d+), (\d+), (\d+), (\d+)\](?!\])")  # not inside <box>[[...]]


def image_path(source: str, file_name: str, images_root: str = "") -> str:
    """Export path of an image: ``<source>/<file_name>`` (file_name relative to the source
    root), under ``images_root`` when one is given."""
    ref = image_ref(source, file_name)
    return f"{images_root.rstrip('/')}/{ref}" if images_root else ref


def pixel_text(text: str, width: int, height: int) -> str:
    """Rewrite printed [0, 1000] boxes into absolute pixels of a ``width`` x ``height`` image."""

    def px(m: re.Match) -> str:
        x1, y1, x2, y2 = (int(v) for v in m.groups())
        return (f"[{round(x1 * width / 1000)}, {round(y1 * height / 1000)}, {round(x2 * width / 1000)}, "
                f"{round(y2 * height / 1000)}]")

    return _BOX.sub(px, text)


def internvl_text(text: str) -> str:
    """Rewrite printed boxes into InternVL's ``<ref>...</ref><box>[[...]]</box>`` tags."""
    text = _NAMED_BOX.sub(
        lambda m: (
            f"<ref>{m.group(1)}</ref><box>[[{', '.join(m.group(i) for i in range(2, 6))}]]</box>"
        ),
        text,
    )
    return _BOX.sub(lambda m: f"<box>[[{', '.join(m.groups())}]]</box>", text)


def _internvl_grounding_answer(answer: str) -> str:
    data = json.loads(answer)
    items = data if isinstance(data, list) else [data]
    if not items:
        return answer
    label = items[0]["label"]
    boxes = ", ".join("[" + ", ".join(str(int(v)) for v in it["bbox_2d"]) + "]" for it in items)
    return f"<ref>{label}</ref><box>[{boxes}]</box>"


def _slot(template_id: str, question: str) -> str | None:
    """The text a grounding question put into its single slot (None if it does not parse)."""
    t = BY_ID.get(template_id)
    if t is None or len(t.slots) != 1:
        return None
    m = re.fullmatch(re.escape(t.pieces[0]) + "(.+)" + re.escape(t.pieces[1]), question)
    return m.group(1) if m else None


def _internvl_grounding_question(row: dict) -> str:
    """InternVL's own grounding prompt (its answers are ``<ref>``/``<box>`` tags, not JSON)."""
    phrase = _slot(row["template_id"], row["question"])
    if phrase is None:
        return internvl_text(row["question"])
    if BY_ID[row["template_id"]].kind == "multi":
        return f"Please provide the bounding box coordinates of every region this describes: <ref>every {phrase}</ref>"
    return f"Please provide the bounding box coordinate of the region this sentence describes: <ref>the {phrase}</ref>"


def _turns(row: dict, fmt: str, box_format: str) -> tuple[str, str]:
    q, a = row["question"], row["answer"]
    if fmt == "qwen" and box_format == "qwen25":
        q, a = pixel_text(q, row["width"], row["height"]), pixel_text(a, row["width"], row["height"])
    if fmt == "internvl":
        if row["task"] == "grounding":
            q, a = _internvl_grounding_question(row), _internvl_grounding_answer(a)
        else:
            q, a = internvl_text(q), internvl_text(a)
    return q, a


def _rows(qa: pa.Table) -> list[dict]:
    missing = [c for c in _COLUMNS if c not in qa.column_names]
    if missing:
        raise ValueError(f"QA table lacks columns {missing} needed for export")
    cols = {c: qa.column(c).to_pylist() for c in _COLUMNS if c not in ("objects", "fact")}
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]


def _groups(rows: list[dict], multi_turn: bool, max_turns: int) -> Iterator[list[dict]]:
    if not multi_turn:
        for r in rows:
            yield [r]
        return
    if max_turns < 1:
        raise ValueError("max_turns must be >= 1")
    rows = sorted(rows, key=lambda r: (r["source"], r["image_id"], r["qa_id"]))
    i = 0
    while i < len(rows):
        j = i
        key = (rows[i]["source"], rows[i]["image_id"])
        while (
            j < len(rows) and j - i < max_turns and (rows[j]["source"], rows[j]["image_id"]) == key
        ):
            j += 1
        yield rows[i:j]
        i = j


def _records(qa: pa.Table, fmt: str, multi_turn: bool, max_turns: int, box_format: str = "qwen3",
             images_root: str = "") -> Iterator[dict]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {FORMATS}")
    if box_format not in BOX_FORMATS:
        raise ValueError(f"unknown box format {box_format!r}; known: {BOX_FORMATS}")
    if not multi_turn:
        qa = qa.take(pc.sort_indices(qa.column("qa_id")))
    for group in _groups(_rows(qa), multi_turn, max_turns):
        first = group[0]
        conv = []
        for k, row in enumerate(group):
            q, a = _turns(row, fmt, box_format)
            conv.append({"from": "human", "value": f"{IMAGE_TOKEN}\n{q}" if k == 0 else q})
            conv.append({"from": "gpt", "value": a})
        rec = {
            "id": first["qa_id"]
            if len(group) == 1 and not multi_turn
            else f"{first['qa_id']}-mt{len(group)}",
            "image": image_path(first["source"], first["file_name"], images_root),
        }
        if fmt == "internvl":
            rec["width"], rec["height"] = first["width"], first["height"]
        rec["conversations"] = conv
        yield rec


def to_qwen(qa: pa.Table, multi_turn: bool = False, max_turns: int = 6, box_format: str = "qwen3",
            images_root: str = "") -> Iterator[dict]:
    """Qwen-VL records (qwen-vl-finetune's LLaVA-style JSON), one per pair or per image chunk."""
    return _records(qa, "qwen", multi_turn, max_turns, box_format, images_root)


def to_internvl(qa: pa.Table, multi_turn: bool = False, max_turns: int = 6, box_format: str = "qwen3",
                images_root: str = "") -> Iterator[dict]:
    """InternVL records: Qwen-VL's plus width/height, boxes as ``<ref>``/``<box>`` tags."""
    return _records(qa, "internvl", multi_turn, max_turns, "qwen3", images_root)


def to_llava(qa: pa.Table, multi_turn: bool = False, max_turns: int = 6, box_format: str = "qwen3",
             images_root: str = "") -> Iterator[dict]:
    """LLaVA records (``<image>`` only in the first human turn)."""
    return _records(qa, "llava", multi_turn, max_turns, "qwen3", images_root)


EXPORTERS = {"qwen": to_qwen, "internvl": to_internvl, "llava": to_llava}


def record_line(record: dict) -> bytes:
    """One record as a compact JSON line (UTF-8, trailing newline); orjson, since serializing
    is most of a release's export time."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def jsonl(records) -> bytes:
    """Records as JSON Lines (UTF-8, one object per line, trailing newline)."""
    return b"".join(record_line(r) for r in records)


def json_array(lines: list[bytes]) -> bytes:
    """JSON lines (from :func:`record_line`) as one JSON array, one record per line, which
    ``json.load`` reads (LLaVA's loader)."""
    if not lines:
        return b"[]\n"
    return b"[\n" + b",\n".join(x.rstrip(b"\n") for x in lines) + b"\n]\n"


def internvl_meta(entries: list[tuple[str, str, int]], root: str) -> dict:
    """InternVL's ``--meta_path`` JSON: one dataset per ``(name, annotation path, rows)``;
    ``root`` is the folder image paths are relative to."""
    return {
        name: {"root": root, "annotation": annotation, "data_augment": False, "repeat_time": 1,
               "length": rows}
        for name, annotation, rows in entries
    }
