"""Names of unattended releases: one per day by default, a counter when a day has several.

The nightly schedule must never reuse a published version (a second tick would fail with
"already published"), and a person reading the list of releases should see when each was cut.
So a scheduled release is named from its tick's date (``v2026.12.01``), and a second release
on the same day gets ``.2``, then ``.3``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def next_release_version(version_format: str, when: dt.datetime, exists: Callable[[str], bool]) -> str:
    """The first of ``<date>``, ``<date>.2``, ``<date>.3``, ... for which ``exists`` is false."""
    base = when.strftime(version_format)
    if not exists(base):
        return base
    n = 2
    while exists(f"{base}.{n}"):
        n += 1
    return f"{base}.{n}"
