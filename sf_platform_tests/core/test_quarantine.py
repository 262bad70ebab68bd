"""The quarantine reason list is closed: every code the pipeline writes is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sf_platform.core import depth_io, quarantine
from sf_platform.core.quarantine import REASONS, quarantine_row, quarantine_table
from sf_platform.core.sources.index import rules

ROOT = Path(__file__).resolve().parents[2] / "sf_platform"


def test_unknown_reason_kind_or_bare_path_is_refused():
    ok = {"source": "s", "shard": "00000", "kind": "image", "reason": "missing_image", "detail": "d"}
    assert quarantine_row(**ok)["reason"] == "missing_image"
    with pytest.raises(ValueError, match="unknown quarantine reason 'made_up'"):
        quarantine_row(**{**ok, "reason": "made_up"})
    with pytest.raises(ValueError, match="unknown quarantine kind"):
        quarantine_row(**{**ok, "kind": "pixel"})
    with pytest.raises(ValueError, match="full URI"):
        quarantine_row(**{**ok, "image_uri": "/data/img.jpg"})
    row = quarantine_row(**{**ok, "image_uri": "file:///data/img.jpg"})
    assert quarantine_table([row]).column("image_uri").to_pylist() == ["file:///data/img.jpg"]


def test_every_reason_code_written_in_the_code_is_listed():
    """Scan the product for reason literals (Rejected/ImageRejected/DepthRejected calls,
    ``reason = "..."`` assignments, quarantine helpers): each must be in REASONS, and every
    listed code must be written somewhere (no stale entries)."""
    pattern = re.compile(
        r"(?:Rejected\(\s*|_reject\(\s*|reason\[row\], detail\[row\] = \(\s*|reason, detail = \(?\s*"
        r"|reason = |reason\[i\] = |reason\[i\], detail\[i\] = |_quarantine\(\s*\w+,\s*)\"([a-z0-9_]+)\""
    )
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        found |= set(pattern.findall(path.read_text()))
    assert found, "the scan found no reason codes: the pattern is stale"
    found |= set(rules._OBJECT_RULES)  # the index's object rules, tested in that order
    assert sorted(found - set(REASONS)) == []
    assert set(depth_io.REASONS) <= set(REASONS)
    assert sorted(set(REASONS) - found) == []


def test_every_reason_has_a_meaning():
    for code, meaning in quarantine.REASONS.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]+", code)
        assert meaning.startswith("[") and len(meaning) > 20, code
