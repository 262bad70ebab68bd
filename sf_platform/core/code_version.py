"""Code versions that follow what decides an asset's output, not only its code.

Dagster re-materializes an asset whose ``code_version`` changed.  A perception asset's output
depends on its code *and* on its settings (model id and revision, backend, thresholds): a
version made of both (``<op version>-<hash of the settings>``) makes a changed depth model
re-run depth and what reads it, and nothing else.  Only settings that change the output go
in: batch sizes and devices do not (the OOM back-off proves a batch size does not change a
row), so tuning them re-runs nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_CHARS = 10


def settings_version(version: str, settings: dict[str, Any]) -> str:
    """``"<version>-<10 hex digits of sha256 over the settings as sorted JSON>"``."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return f"{version}-{hashlib.sha256(blob.encode()).hexdigest()[:HASH_CHARS]}"
