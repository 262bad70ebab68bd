import io
import json
import math
import tracemalloc

import pyarrow as pa
import pytest

from sf_platform.core.sources.json_records import parse_records
from sf_platform.core.sources.json_stream import JSONStreamError, iter_arrays
from sf_platform.core.sources.objects365 import ANNOTATION_FIELDS, parse_coco

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("v", pa.list_(pa.float64()))])


def _collect(text: str, chunk: int, keys=("items",)) -> dict[str, list[dict]]:
    out: dict[str, list] = {}
    parsers = {k: (lambda b: parse_records(b, SCHEMA, frozenset({"id"}))) for k in keys}
    for key, table in iter_arrays(io.BytesIO(text.encode()), parsers, chunk_bytes=chunk):
        out.setdefault(key, []).extend(table.to_pylist())
    return out


AWKWARD = [
    {"id": 1, "name": "plain", "v": [1, 2]},
    {"id": 2, "name": "braces }, { ] [ in a string", "v": [3.5]},
    {"id": 3, "name": "nested", "v": [], "extra": {"a": {"b": [1, {"c": 2}]}, "d": "}"}},
    {"id": "4", "name": 'string id and escaped " quote \\', "v": [1e3]},
    {"id": 5, "name": "é unicode ☃", "v": None},
]


@pytest.mark.parametrize("chunk", [7, 16, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_matches_json_load_whatever_the_window_and_layout(chunk, indent):
    doc = {"info": {"x": "}, {"}, "items": AWKWARD, "tail": [1, 2, 3], "n": 3.5, "s": "x"}
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    got = _collect(text, chunk)["items"]
    assert [r["id"] for r in got] == ["1", "2", "3", "4", "5"]
    assert [r["name"] for r in got] == [d["name"] for d in AWKWARD]
    assert got[0]["v"] == [1.0, 2.0] and got[4]["v"] is None


def test_sections_in_any_order_and_unwanted_sections_skipped():
    text = json.dumps(
        {"b": [{"id": 2}], "skip": {"deep": [[{"}": "]"}]]}, "a": [{"id": 1}], "c": "str"}
    )
    got = _collect(text, 8, keys=("a", "b"))
    assert got == {
        "b": [{"id": "2", "name": None, "v": None}],
        "a": [{"id": "1", "name": None, "v": None}],
    }


def test_nan_literals_and_wrong_types_become_nan_not_errors():
    text = '{"annotations": [{"id": 1, "image_id": 2, "category_id": 3, "bbox": [NaN, 1, "x", Infinity]}]}'
    ((_section, table),) = list(
        parse_coco(io.BytesIO(text.encode()), sections={"annotations": ANNOTATION_FIELDS})
    )
    bbox = table.column("bbox")[0].as_py()
    assert math.isnan(bbox[0]) and bbox[1] == 1.0 and math.isnan(bbox[2]) and bbox[3] == math.inf


@pytest.mark.parametrize(
    "bad",
    [
        '{"items": [{"id": 1}, {"id": 2]}',
        '{"items": [{"id": 1}',
        '{"items": {"id": 1}}',
        '[{"id": 1}]',
        '{"items": [1, 2]}',
    ],
)
def test_invalid_or_misshaped_json_raises_a_clear_error(bad):
    with pytest.raises(JSONStreamError):
        _collect(bad, 8)


def test_streaming_never_materializes_the_file(tmp_path):
    """Parsing a ~6 MB file in 128 KB windows: Python-heap peak stays far below the file size."""
    path = tmp_path / "big.json"
    with open(path, "w") as f:
        f.write('{"images": [], "annotations": [')
        f.write(
            ",".join(
                json.dumps(
                    {
                        "id": i,
                        "image_id": i % 97,
                        "category_id": 1,
                        "bbox": [1.5, 2.5, 3.0, 4.0],
                        "iscrowd": 0,
                        "isfake": 0,
                        "isreflected": 0,
                        "area": 12.0,
                    }
                )
                for i in range(50_000)
            )
        )
        f.write("]}")
    size = path.stat().st_size
    assert size > 5_000_000
    rows = 0
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            for section, table in parse_coco(f, chunk_bytes=128 * 1024):
                rows += table.num_rows if section == "annotations" else 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 50_000
    # A handful of 128 KB windows (the buffer, a batch, its NDJSON copy), not the file.
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte file"


def test_well_formed_sections_take_the_fast_path(monkeypatch):
    """Windows that span the end of one section and the start of the next are cut at the
    section's end, without falling back to the (slow) exact tokenizer."""
    import sf_platform.core.sources.json_stream as js

    def no_exact_scan(*args, **kwargs):
        raise AssertionError("exact tokenizer used on a well-formed file")

    monkeypatch.setattr(js, "_scan", no_exact_scan)
    doc = {
        "images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(50)],
        "annotations": [{"id": i, "bbox": [1, 2, 3, 4]} for i in range(50)],
    }
    text = json.dumps(doc).encode()
    for chunk in (300, 1000, 1 << 20):
        parsed = {}
        for key, table in iter_arrays(
            io.BytesIO(text),
            {
                "images": lambda b: parse_records(b, SCHEMA, frozenset({"id"})),
                "annotations": lambda b: parse_records(b, SCHEMA, frozenset({"id"})),
            },
            chunk_bytes=chunk,
        ):
            parsed[key] = parsed.get(key, 0) + table.num_rows
        assert parsed == {"images": 50, "annotations": 50}
