"""OpenImages V7 box annotations (CSV) reader.

Box file columns: ``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,
IsTruncated,IsGroupOf,IsDepiction,IsInside`` -- note the XMin, XMax, YMin, YMax order, all
normalized to [0, 1].  The train file adds ``XClick1X..XClick4Y`` (8 extreme-click columns);
columns are selected by name, so both variants read the same.  Flags are 1 / 0 / -1, where -1
(or an empty cell) means "unknown":

- ``IsGroupOf``, ``IsDepiction``, ``IsTruncated`` -- the flags that keep a box from being a
  counted instance or a relation endpoint -- resolve an unknown to **True**.  QA reads a null
  flag as "not flagged" (the convention of sources that have no such flag), so a null here
  would count a possible group-of box as one chair, name a possible painting "the person" and
  ask near/far about a possibly cut-off object.  Treating unknown as "possibly true" only ever
  drops questions (DESIGN.md: prefer dropping a pair to publishing a doubtful one).
- ``IsOccluded`` and ``IsInside`` stay null when unknown (no QA rule relies on them; null is
  honest: an unknown occlusion is not a known visible object).

Class hierarchy.  OpenImages labels people as Man / Woman / Boy / Girl / Person (and cars as
Car / Taxi / ..., and so on): one photo may hold two "Man" boxes and a "Person" box that are
three people, or the same man boxed twice.  With ``hierarchy`` (``bbox_labels_600_hierarchy.json``)
every object carries ``category_ancestors`` (display names of its class's ancestors, via
``Subcategory`` links only: a "Part" such as a human face is not a kind of person), and the
scene marks a category ``category_incomplete`` wherever an ancestor or descendant class shares
the image, so QA neither counts nor names it.  **Without a hierarchy file** ``category_ancestors``
stays null and that protection is off: "How many people? 1" can then be published for a photo
with two "Man" boxes and one "Person" box.  Configure ``hierarchy`` for real OpenImages data.

Boxes go into ``bbox_norm`` as ``[XMin, YMin, XMax, YMax]``: the CSV does not give image sizes,
and curation converts to pixels once it has measured the image.  Images appear in the order of
their first row; ``file_name`` is ``<ImageID>.jpg`` (the layout of the official image dumps).
OpenImages has no annotation ids, so ``object_id`` is ``<ImageID>-<k>`` with ``k`` the row's
index among that image's rows: stable across re-indexing, and appending rows for new images
never renumbers old ones.

Class descriptions: ``MID,DisplayName`` rows (``class-descriptions-boxable.csv`` has no header,
``oidv7-class-descriptions.csv`` has ``LabelName,DisplayName``); both are accepted.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sf_platform.core.sources.records import ImageOrder, SourceRecords, Spill, raw_images
from sf_platform.storage.object_store import open_uri

BOX_COLUMNS = (
    "ImageID",
    "Source",
    "LabelName",
    "Confidence",
    "XMin",
    "XMax",
    "YMin",
    "YMax",
    "IsOccluded",
    "IsTruncated",
    "IsGroupOf",
    "IsDepiction",
    "IsInside",
)
_FLAGS = {
    "IsOccluded": "is_occluded",
    "IsTruncated": "is_truncated",
    "IsGroupOf": "is_group",
    "IsDepiction": "is_depiction",
    "IsInside": "is_inside",
}
_TYPES = {
    "ImageID": pa.string(),
    "Source": pa.string(),
    "LabelName": pa.string(),
    "Confidence": pa.float32(),
    "XMin": pa.float64(),
    "XMax": pa.float64(),
    "YMin": pa.float64(),
    "YMax": pa.float64(),
    **{flag: pa.int8() for flag in _FLAGS},
}
_USED = tuple(c for c in BOX_COLUMNS if c != "Source")  # Source (xclick/activemil) is not kept
_HEADER_NAMES = {"mid", "labelname", "label_name"}
BLOCK_BYTES = 16 << 20


def read_class_descriptions(
    uri: str, endpoint_url: str | None = None, region: str | None = None
) -> pa.Table:
    """``MID,DisplayName`` CSV (header optional) -> table (key, name)."""
    with open_uri(uri, endpoint_url, region) as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        rows = [r for r in csv.reader(text) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() in _HEADER_NAMES:
        rows = rows[1:]
    bad = [i for i, r in enumerate(rows) if len(r) < 2]
    if bad:
        raise ValueError(
            f"{uri}: class-description row {bad[0] + 1} has no DisplayName: {rows[bad[0]]!r}"
        )
    return pa.table(
        {
            "key": pa.array([r[0].strip() for r in rows], pa.string()),
            "name": pa.array([r[1].strip() for r in rows], pa.string()),
        }
    )


# Flags whose unknown value counts as True (see the module docstring): each one, when set,
# keeps a box out of counts, names and relations, so "possibly set" must too.
UNKNOWN_IS_TRUE = frozenset({"IsGroupOf", "IsDepiction", "IsTruncated"})


def _flag(col: pa.ChunkedArray, unknown_as: bool | None = None) -> pa.Array:
    """1 -> True, 0 -> False, -1 (unknown) or empty -> ``unknown_as`` (null by default)."""
    unknown = pc.fill_null(pc.less(col, 0), True)
    return pc.if_else(unknown, pa.scalar(unknown_as, pa.bool_()), pc.not_equal(col, 0))


def read_hierarchy(
    uri: str, classes: pa.Table, endpoint_url: str | None = None, region: str | None = None
) -> dict[str, list[str]]:
    """``bbox_labels_600_hierarchy.json`` -> MID -> sorted display names of its ancestor classes.

    The file is a tree ``{"LabelName": mid, "Subcategory": [node, ...], "Part": [...]}`` whose
    root is "Entity" (``/m/0bl9f``).  A class may sit under several parents (the tree repeats
    it): its ancestors are the union over every place it appears.  Only ``Subcategory`` links
    are followed ("Part" children are parts, not kinds).  Ancestors without a display name in
    ``classes`` (the root) are left out: no box can carry them.
    """
    with open_uri(uri, endpoint_url, region) as f:
        try:
            root = json.load(io.TextIOWrapper(f, encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{uri}: not a JSON class hierarchy: {exc}") from None
    names = dict(zip(classes.column("key").to_pylist(), classes.column("name").to_pylist()))
    ancestors: dict[str, set[str]] = {}
    stack: list[tuple[object, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, above = stack.pop()
        mid, children = _hierarchy_node(node, uri)
        ancestors.setdefault(mid, set()).update(names[a] for a in above if a in names)
        stack.extend((child, above + (mid,)) for child in children)
    return {mid: sorted(a) for mid, a in ancestors.items()}


def _hierarchy_node(node: object, uri: str) -> tuple[str, list]:
    """(LabelName, Subcategory list) of one hierarchy node; ValueError naming the file when
    the node is not ``{"LabelName": "/m/...", "Subcategory": [...]}`` (a malformed input file
    is a value problem, not a programming error)."""
    mid = node.get("LabelName") if isinstance(node, dict) else None
    children = (node.get("Subcategory") or []) if isinstance(node, dict) else None
    if isinstance(mid, str) and isinstance(children, list):
        return mid, children
    raise ValueError(
        f"{uri}: hierarchy node {str(node)[:80]!r} is not "
        '{"LabelName": "/m/...", "Subcategory": [...]}'
    )


def _ancestors_column(labels: pa.ChunkedArray, hierarchy: dict[str, list[str]] | None) -> pa.Array:
    """Per box, its class's ancestor names (empty for a class outside the hierarchy), or all
    null without a hierarchy."""
    if hierarchy is None:
        return pa.nulls(len(labels), pa.list_(pa.string()))
    return pa.array([hierarchy.get(m, []) for m in labels.to_pylist()], type=pa.list_(pa.string()))


def boxes_to_objects(
    batch: pa.Table,
    pos: np.ndarray,
    rank: np.ndarray,
    seq_start: int,
    hierarchy: dict[str, list[str]] | None = None,
) -> pa.Table:
    """One CSV batch -> RAW_OBJECTS rows (normalized boxes in ``bbox_norm``)."""
    n = batch.num_rows
    coords = (
        np.stack(
            [
                pc.fill_null(batch.column(c), np.nan).to_numpy()
                for c in ("XMin", "YMin", "XMax", "YMax")
            ],
            axis=1,
        )
        if n
        else np.zeros((0, 4))
    )
    image_id = batch.column("ImageID")
    cols = {
        "object_id": pc.binary_join_element_wise(
            image_id, pc.cast(pa.array(rank, pa.int64()), pa.string()), "-"
        ),
        "image_id": image_id,
        "bbox_norm": pa.FixedSizeListArray.from_arrays(pa.array(coords.ravel(), pa.float64()), 4),
        "score": pc.fill_null(batch.column("Confidence"), 1.0),
        "provenance": pa.repeat(pa.scalar("annotation", pa.string()), n),
        "image_key": image_id,
        "category_key": batch.column("LabelName"),
        "category_ancestors": _ancestors_column(batch.column("LabelName"), hierarchy),
        "_pos": pa.array(pos, pa.int64()),
        "_seq": pa.array(np.arange(seq_start, seq_start + n, dtype=np.int64)),
    }
    for column, name in _FLAGS.items():
        cols[name] = _flag(batch.column(column), True if column in UNKNOWN_IS_TRUE else None)
    return pa.table(cols)


def read_openimages(
    boxes_uri: str,
    classes_uri: str,
    spill: Spill,
    endpoint_url: str | None = None,
    region: str | None = None,
    block_bytes: int = BLOCK_BYTES,
    hierarchy_uri: str | None = None,
) -> SourceRecords:
    """Stream an OpenImages box CSV into :class:`SourceRecords` (objects spilled).

    ``hierarchy_uri``: the class hierarchy JSON; without it objects carry no
    ``category_ancestors`` and related classes are not detected (see the module docstring).
    """
    classes = read_class_descriptions(classes_uri, endpoint_url, region)
    hierarchy = (
        read_hierarchy(hierarchy_uri, classes, endpoint_url, region) if hierarchy_uri else None
    )
    order = ImageOrder()
    seq = 0
    with open_uri(boxes_uri, endpoint_url, region) as f:
        try:
            reader = pacsv.open_csv(
                f,
                read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(_USED), column_types=_TYPES
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            raise ValueError(
                f"{boxes_uri}: not an OpenImages box CSV (needs columns {', '.join(BOX_COLUMNS)}): {exc}"
            ) from None
        for record_batch in reader:
            batch = pa.Table.from_batches([record_batch])
            if batch.num_rows == 0:
                continue
            pos, _ = order.positions(batch.column("ImageID"))
            rank = order.ranks(pos)
            spill.append(boxes_to_objects(batch, pos, rank, seq, hierarchy))
            seq += batch.num_rows
    ids = pa.array(order.image_ids(), pa.string())
    return SourceRecords(
        images=raw_images(ids, pc.binary_join_element_wise(ids, ".jpg", "")),
        objects=spill,
        categories=classes,
    )
