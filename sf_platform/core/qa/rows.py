"""Assemble a task's QA table (``schemas.QA``) from per-row arrays, sorted by ``qa_id``.

Generators describe their rows as arrays (image index, template index, question, answer, the
objects mentioned in mention order, fact and evidence); this module turns them into the Arrow
table in one pass.  Rows are sorted by ``qa_id`` and a duplicate id is an error (it would
mean the same question twice), so the output is canonical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas
from sf_platform.core.qa.ids import combine, hash_string, qa_id_order, qa_ids
from sf_platform.core.qa.scene_view import SceneView, expand_ranges
from sf_platform.core.qa.templates import TEMPLATES, const, template_ids

EVIDENCE_TYPES = {f.name: f.type for f in schemas.EVIDENCE}


@dataclass
class Rows:
    """Per-row arrays of one task's pairs (all of length n, or scalars for fact parts)."""

    img: np.ndarray  # image index into the view
    tpl: np.ndarray  # template index into TEMPLATES[task]
    question: pa.Array
    answer: pa.Array
    mention_offsets: np.ndarray  # n + 1 offsets into mention_objects
    mention_objects: np.ndarray  # object indices into the view, in mention order
    key: np.ndarray  # uint64 hash of what identifies the pair besides image/task/template
    subject: pa.Array | str
    predicate: str | pa.Array
    obj: pa.Array | str
    value: pa.Array | str
    evidence: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.img)


def fixed_mentions(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mention arrays for rows that each mention the same number of objects."""
    k, n = len(cols), len(cols[0])
    return np.arange(0, n * k + 1, k, dtype=np.int64), np.stack(cols, axis=1).ravel()


def mention_key(view: SceneView, first: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """Order-sensitive hash of the object ids a row mentions."""
    return combine(view.obj_hash[first], *[view.obj_hash[r] for r in rest])


def pair_rows(view: SceneView, img: np.ndarray, tpl: np.ndarray, question: pa.Array, answer: pa.Array,
              first: np.ndarray, second: np.ndarray, subject: np.ndarray, predicate, obj: np.ndarray,
              evidence: dict) -> Rows:
    """Rows of a two-object relation (near_far, left_right, perspective): the question
    mentions ``first`` then ``second``; the fact is ``(subject, predicate, obj)``."""
    offsets, mentioned = fixed_mentions(first, second)
    return Rows(
        img=img,
        tpl=tpl,
        question=question,
        answer=answer,
        mention_offsets=offsets,
        mention_objects=mentioned,
        key=mention_key(view, first, second),
        subject=view.object_id.take(pa.array(subject)),
        predicate=predicate,
        obj=view.object_id.take(pa.array(obj)),
        value=const("", len(img)),
        evidence=evidence,
    )


def _strings(x, n: int) -> pa.Array:
    if x is None or isinstance(x, str):
        return const(x, n)
    return x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x


def _evidence(ev: dict, n: int) -> pa.StructArray:
    unknown = set(ev) - set(EVIDENCE_TYPES)
    if unknown:
        raise ValueError(f"unknown evidence fields {sorted(unknown)}")
    arrays = []
    for name, typ in EVIDENCE_TYPES.items():
        v = ev.get(name)
        if v is None:
            arrays.append(pa.nulls(n, typ))
        elif isinstance(v, (pa.Array, pa.ChunkedArray)):
            arrays.append(_strings(v, n).cast(typ))
        elif isinstance(v, str):
            arrays.append(const(v, n))
        else:
            a = np.asarray(v)
            if a.dtype.kind == "f":
                arrays.append(pa.array(a.astype(np.float32), mask=~np.isfinite(a), type=typ))
            else:
                arrays.append(pa.array(a, type=typ))
    return pa.StructArray.from_arrays(arrays, fields=list(schemas.EVIDENCE))


def task_hash(task: str) -> np.uint64:
    return hash_string("task:" + task)


@cache
def _template_hashes(task: str) -> np.ndarray:
    return np.asarray([hash_string("template:" + t.id) for t in TEMPLATES[task]], dtype=np.uint64)


def _permute(x, order: np.ndarray, n: int):
    """Row-permute an array-like (numpy, Arrow, or a scalar that stands for every row)."""
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, (pa.Array, pa.ChunkedArray)):
        return _strings(x, n).take(pa.array(order))
    return np.asarray(x)[order]


def build(view: SceneView, task: str, rows: Rows) -> pa.Table:
    """The QA table of ``rows``: image columns from the view, sorted by qa_id, ids unique.

    Rows are put in qa_id order *before* the table is assembled (numpy on the id hashes),
    which spares sorting the nested ``objects`` column afterwards.
    """
    n = rows.n
    if n == 0:
        return schemas.empty(schemas.QA)
    image_hash = view.image_hash[rows.img]
    full = combine(image_hash, task_hash(task), _template_hashes(task)[rows.tpl], rows.key)
    order = qa_id_order(image_hash, full)
    ids = qa_ids(image_hash[order], full[order])
    if n > 1:
        a = ids.slice(1)
        dup = pc.equal(a, ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"{task}: duplicate qa_id {a[i].as_py()} (the same question generated twice)"
            )
    p = lambda x: _permute(x, order, n)
    img = pa.array(rows.img[order], type=pa.int64())
    sizes = np.diff(rows.mention_offsets)[order]
    mentioned = rows.mention_objects[expand_ranges(rows.mention_offsets[:-1][order], sizes)]
    mo = pa.array(mentioned, type=pa.int64())
    objs = pa.StructArray.from_arrays(
        [view.object_id.take(mo), view.category.take(mo), view.bbox_1000.take(mo)],
        fields=list(schemas.QA_OBJECT),
    )
    offsets = pa.array(np.r_[0, np.cumsum(sizes)], type=pa.int32())
    fact = pa.StructArray.from_arrays(
        [_strings(p(v), n) for v in (rows.subject, rows.predicate, rows.obj, rows.value)],
        fields=list(schemas.FACT),
    )
    cols = {
        "qa_id": ids,
        "task": const(task, n),
        **{
            k: view.images[k].take(img)
            for k in ("source", "shard", "image_id", "image_uri", "file_name", "width", "height")
        },
        "question": p(rows.question),
        "answer": p(rows.answer),
        "template_id": template_ids(task, rows.tpl[order]),
        "objects": pa.ListArray.from_arrays(offsets, objs),
        "fact": fact,
        "evidence": _evidence({k: p(v) for k, v in rows.evidence.items()}, n),
    }
    return pa.Table.from_arrays([cols[f.name] for f in schemas.QA], schema=schemas.QA)
