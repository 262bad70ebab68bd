"""What one index build reads: the resolved input files, the format reader, the depth listing,
and the build context (image list and its checks) the later steps share."""

from __future__ import annotations

import csv
import posixpath
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.paths import path_escapes, root_uri, safe_relative_path
from sf_platform.core.quarantine import quarantine_row
from sf_platform.core.sources.index.buckets import ORPHAN_POS
from sf_platform.core.sources.index.rules import ImageChecks
from sf_platform.core.sources.objects365 import read_objects365
from sf_platform.core.sources.openimages import read_openimages
from sf_platform.core.sources.pixmo import read_pixmo
from sf_platform.core.sources.records import RAW_OBJECTS, SourceInputError, SourceRecords, Spill
from sf_platform.storage.layout import shard_name
from sf_platform.storage.object_store import filesystem_for, join_uri

# Order of quarantine rows about one image: the image itself, then its objects, then skeletons.
KIND_RANK = {"image": 0, "object": 1, "keypoints": 2}


@dataclass(frozen=True)
class Inputs:
    format: str  # reader: objects365 | openimages | pixmo
    images: str
    annotations: str
    classes: str | None
    depth: str | None
    keypoints: str | None
    hierarchy: str | None = None


def resolve_inputs(src: SourceConfig) -> Inputs:
    if src.format == "synthetic":
        from sf_platform.synthetic import ensure_generated

        gen = ensure_generated(src)
        return Inputs("objects365", gen.images_dir, gen.annotations, None, gen.depth_dir, gen.keypoints)
    return Inputs(
        src.format, src.images, src.annotations, src.classes, src.depth, src.keypoints,
        src.hierarchy,
    )


_PARSE_ERRORS = (pa.ArrowException, ValueError, KeyError, UnicodeDecodeError, csv.Error)


@contextmanager
def named_input_errors(uri: str, what: str):
    """A parse error of ``uri`` (Arrow, JSON, CSV, a bad value) becomes a
    :class:`SourceInputError` naming the file; a missing file keeps its own error."""
    try:
        yield
    except SourceInputError:
        raise
    except _PARSE_ERRORS as exc:
        message = str(exc) if uri in str(exc) else f"{uri}: {exc}"
        raise SourceInputError(f"cannot read the {what}: {message}") from exc


def read_records(inputs: Inputs, s3: S3Config, folder: str) -> SourceRecords:
    with named_input_errors(inputs.annotations, f"{inputs.format} annotations"):
        return _read_records(inputs, s3, folder)


def _read_records(inputs: Inputs, s3: S3Config, folder: str) -> SourceRecords:
    spill = Spill(folder, RAW_OBJECTS, "objects")
    ep, region = s3.endpoint_url, s3.region
    if inputs.format == "objects365":
        return read_objects365(inputs.annotations, spill, ep, region)
    if inputs.format == "openimages":
        return read_openimages(
            inputs.annotations, inputs.classes, spill, ep, region, hierarchy_uri=inputs.hierarchy
        )
    if inputs.format == "pixmo":
        return read_pixmo(inputs.annotations, spill, ep, region)
    raise ValueError(f"unknown source format {inputs.format!r}")


def depth_files(depth: str | None, s3: S3Config) -> set[str] | None:
    """Relative paths of every file under the depth folder (listed once), or None."""
    if not depth:
        return None
    fs, path = filesystem_for(depth, s3.endpoint_url, s3.region)
    if not fs.exists(path):
        raise FileNotFoundError(f"depth folder not found: {depth}")
    base = path.rstrip("/")
    return {posixpath.relpath(p, base) for p in fs.find(base)}


def depth_uri(depth: str, files: set[str], file_name: str) -> str | None:
    """``<depth>/<stem>.npy`` or ``.png`` (stem with its sub-folders, else the bare stem)."""
    stem = posixpath.splitext(file_name.replace("\\", "/"))[0]
    for candidate in (stem, posixpath.basename(stem)):
        for ext in (".npy", ".png"):
            if candidate + ext in files:
                return join_uri(depth, candidate + ext)
    return None


@dataclass
class BuildContext:
    src: SourceConfig
    inputs: Inputs
    images: pa.Table
    checks: ImageChecks
    depth_files: set[str] | None

    @property
    def num_images(self) -> int:
        return self.images.num_rows

    def image_uri(self, file_name: str | None) -> str | None:
        """Full URI of a file of the image list (None when it names none inside the root)."""
        if not file_name or path_escapes(file_name):
            return None
        return join_uri(root_uri(self.inputs.images), safe_relative_path(file_name))

    def file_name(self, pos: int) -> str | None:
        """File name of the image at position ``pos`` (None for :data:`ORPHAN_POS` / -1)."""
        return self.images.column("file_name")[pos].as_py() if 0 <= pos < ORPHAN_POS else None

    def quarantine(self, pos: int, seq: int, *, kind: str, **fields) -> dict:
        """A quarantine row about the image at position ``pos`` (ORPHAN_POS or -1: about no
        image of the list, so it goes to shard 00000), with the keys that order it."""
        known = 0 <= pos < ORPHAN_POS
        row = quarantine_row(
            source=self.src.name,
            shard=shard_name(pos // self.src.shard_size if known else 0),
            kind=kind,
            **fields,
        )
        return {**row, "_pos": pos if known else ORPHAN_POS, "_rank": KIND_RANK[kind], "_seq": seq}
