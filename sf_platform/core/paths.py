"""File names from annotation files, kept inside the folder they are relative to.

An annotation file is input we do not control: its ``file_name`` may be absolute, a URL, a
Windows path, or climb out of the images root with ``..``.  Both the source index (which
quarantines such rows at read time) and curation (where bytes are actually fetched, so it
checks again) use :func:`safe_relative_path`.
"""

from __future__ import annotations

import os
import posixpath
import re

from sf_platform.core.quarantine import Rejected

_DRIVE = re.compile(r"^[A-Za-z]:")


class PathEscape(Rejected):
    """A file name that does not stay inside its root (reason ``path_escape``)."""

    def __init__(self, detail: str):
        super().__init__("path_escape", detail)


def safe_relative_path(file_name: str) -> str:
    """``file_name`` normalised, or :class:`PathEscape` if it leaves its root.

    Absolute paths, URLs, drive letters, NUL bytes and any ``..`` that climbs above the root
    are refused (backslashes count as separators, so a Windows-made annotation file cannot
    point outside either); ``a/../b`` is fine and becomes ``b``.
    """
    p = file_name.replace("\\", "/")
    if "\x00" in p or p.startswith("/") or "://" in p or _DRIVE.match(p):
        raise PathEscape(f"file name {file_name!r} is not a relative path inside its root")
    norm = posixpath.normpath(p)
    if norm in (".", "..") or norm.startswith("../"):
        raise PathEscape(f"file name {file_name!r} leaves its root")
    return norm


def path_escapes(file_name: str) -> bool:
    """True when :func:`safe_relative_path` refuses ``file_name``."""
    try:
        safe_relative_path(file_name)
    except PathEscape:
        return True
    return False


def resolve_inside(root: str, relative: str) -> str | None:
    """The real path of ``relative`` under a local ``root`` (``file://`` URL or folder), symbolic
    links resolved; :class:`PathEscape` when it resolves outside the root's own real path (a link
    to ``../outside/secret.jpg`` or ``/etc/passwd``).  None for object-store roots (``s3://``
    has no links).  The detail names the file name only, never the link target's content."""
    if root.startswith("s3://"):
        return None
    base = os.path.realpath(root.removeprefix("file://"))
    real = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, real]) != base:
        raise PathEscape(f"file name {relative!r} resolves (through a symbolic link) outside its root")
    return real


def root_uri(root: str) -> str:
    """``s3://`` and ``file://`` roots stay; a local folder becomes ``file:///abs/folder``."""
    if root.startswith(("s3://", "file://")):
        return root.rstrip("/")
    return "file://" + os.path.abspath(root)
