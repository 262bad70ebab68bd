"""Code versions that change exactly when an asset's output could change.

Dagster marks an asset partition stale when its ``code_version`` differs from the one its
latest materialization recorded. A hand-bumped constant misses the changes that matter most
here: a new model id, a moved threshold, an edited question template. So each asset's code
version is its hand-bumped base (for logic changes) plus a short hash of everything else its
output depends on: model ids and revisions, the thresholds it reads, its templates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):  # pydantic settings
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    return value


def content_hash(*inputs: Any, length: int = 10) -> str:
    """A short, stable hash of plain values, dataclasses and pydantic models."""
    text = json.dumps([_plain(v) for v in inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def code_version(base: str, *inputs: Any) -> str:
    """``"<base>+<hash of inputs>"``: bump ``base`` for a logic change; the inputs change it
    by themselves."""
    return f"{base}+{content_hash(*inputs)}" if inputs else base
