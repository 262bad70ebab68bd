"""Small helpers that turn plain values into Dagster metadata (one place for the conversions)."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pyarrow as pa


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """Dagster's column schema from an Arrow schema (the types of ``core/schemas.py``)."""
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


def table_metadata(rows: int, schema: pa.Schema | None, uri: str | None) -> dict:
    """The standard metadata every stored table carries in the UI: row count, column schema,
    and where it lives (only when one partition was written: a range lists no single URI)."""
    meta: dict = {"dagster/row_count": dg.MetadataValue.int(rows)}
    if schema is not None:
        meta["dagster/column_schema"] = dg.MetadataValue.table_schema(column_schema(schema))
    if uri:
        meta["dagster/uri"] = dg.MetadataValue.path(uri)
    return meta


def reason_counts(quarantine: pa.Table) -> dict[str, int]:
    """Quarantined rows per ``kind:reason`` (shown in the UI so drops are never silent)."""
    if quarantine.num_rows == 0:
        return {}
    kinds = quarantine.column("kind").to_pylist()
    reasons = quarantine.column("reason").to_pylist()
    return dict(sorted(Counter(f"{k}:{r}" for k, r in zip(kinds, reasons)).items()))


def plain(meta: dict) -> dict[str, dg.MetadataValue]:
    """JSON-able dict from a core function -> Dagster metadata (nested values as JSON)."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, bool):
            out[k] = dg.MetadataValue.bool(v)
        elif isinstance(v, int):
            out[k] = dg.MetadataValue.int(v)
        elif isinstance(v, float):
            out[k] = dg.MetadataValue.float(v)
        elif isinstance(v, str):
            out[k] = dg.MetadataValue.text(v)
        elif v is None:
            out[k] = dg.MetadataValue.null()
        else:
            out[k] = dg.MetadataValue.json(v)
    return out
