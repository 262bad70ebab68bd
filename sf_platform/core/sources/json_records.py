"""Parse one batch of JSON array elements (as cut by :mod:`.json_stream`) into an Arrow table.

The fast path is ``pyarrow.json`` on the batch turned into NDJSON (columns straight from C++);
a batch it rejects (a value of another type, an odd shape) goes through ``orjson`` (or the
standard library's ``json``, which accepts ``NaN``/``Infinity``) and a per-column coercion that
turns wrong-typed values into nulls for the readers to quarantine.
"""

from __future__ import annotations

import io
import json
import math

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from sf_platform.core.sources.json_stream import ChunkParseError, JSONStreamError

_SEPARATORS = (b"},{", b"}, {")


def parse_records(
    batch: bytes, schema: pa.Schema, id_fields: frozenset[str] = frozenset()
) -> pa.Table:
    """Parse comma-separated JSON objects into a table of ``schema`` (unknown keys ignored).

    ``id_fields`` (declared int64 in ``schema`` for the fast path) come back as strings, so an
    id written as ``5`` or ``"5"`` reads the same.  Values of the wrong type become null (for a
    list of floats: NaN items), which the readers then quarantine with a reason.
    """
    table = _parse_fast(batch, schema)
    if table is None:
        rows = _parse_python(batch)
        table = _rows_to_table(rows, schema, id_fields)
    for name in id_fields:
        i = table.schema.get_field_index(name)
        if table.schema.field(i).type != pa.string():
            table = table.set_column(i, name, table.column(i).cast(pa.string()))
    return table


def _parse_fast(batch: bytes, schema: pa.Schema) -> pa.Table | None:
    nd = batch
    for sep in _SEPARATORS:
        nd = nd.replace(sep, b"}\n{")
    try:
        return pajson.read_json(
            io.BytesIO(nd),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(nd) + 64),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _parse_python(batch: bytes) -> list:
    text = b"[" + batch + b"]"
    try:
        rows = orjson.loads(text)
        if not _has_huge_integer(rows):
            return rows
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChunkParseError(str(exc)) from None


def _has_huge_integer(rows) -> bool:
    """orjson reads an integer beyond 64 bits as a float (10**30 -> 1.0000000000000000199e30);
    such a batch is parsed again by ``json``, which keeps every digit for the range checks."""
    return isinstance(rows, list) and any(
        isinstance(v, float) and v.is_integer() and abs(v) >= 2**63
        for r in rows
        if isinstance(r, dict)
        for v in r.values()
    )


def _as_float(v) -> float:
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


_INT64 = (-(2**63), 2**63 - 1)


def _as_int(v) -> int | None:
    """An integer value; one beyond int64 saturates at its bound (the readers' range checks
    then reject it with a reason: a size or count that large is never real)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, int):
        return min(max(v, _INT64[0]), _INT64[1])
    return None


def _as_id(v) -> str | None:
    """An id as a string, integers in canonical form and never saturated: an id beyond int64
    keeps its digits, so the index can reject it (``value_overflow``)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    return str(int(v)) if isinstance(v, int) else str(v)


def _coerce(values: list, typ: pa.DataType, is_id: bool) -> pa.Array:
    if is_id:
        return pa.array([_as_id(v) for v in values], pa.string())
    if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
        return pa.array(
            [[_as_float(x) for x in v] if isinstance(v, list) else None for v in values], typ
        )
    if pa.types.is_floating(typ):
        return pa.array([None if v is None else _as_float(v) for v in values], typ)
    if pa.types.is_integer(typ):
        return pa.array([_as_int(v) for v in values], pa.int64()).cast(typ, safe=False)
    if pa.types.is_string(typ):
        return pa.array([None if v is None else str(v) for v in values], typ)
    return pa.array(values, typ)


def _rows_to_table(rows: list, schema: pa.Schema, id_fields: frozenset[str]) -> pa.Table:
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise JSONStreamError(
            f"array element {bad} of a batch is {type(rows[bad]).__name__}, expected an object"
        )
    arrays = []
    for field in schema:
        values = [r.get(field.name) for r in rows]
        is_id = field.name in id_fields
        arrays.append(_coerce(values, field.type, is_id))
    fields = [pa.field(f.name, pa.string() if f.name in id_fields else f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
