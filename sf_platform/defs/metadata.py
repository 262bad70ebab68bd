"""Small helpers that turn plain values into Dagster metadata (one place for the conversions)."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pyarrow as pa


def table_counts(name: str, table: pa.Table) -> dict[str, dg.MetadataValue]:
    return {f"{name}_rows": dg.MetadataValue.int(table.num_rows)}


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
