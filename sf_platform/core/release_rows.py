"""A QA shard's rows as the release publishes them: portable image reference, licence,
attribution and a content hash.

- ``image_uri`` becomes ``<source>/<file_name>``: relative to the folder holding one
  sub-folder per source, whose origin the card and manifest state once per source.  The
  build machine's paths (``file:///...``) never leave it; the column keeps its name and type,
  so the QA schema (and ``sf-platform validate``) still apply to release files.
- ``license``, ``image_author``, ``image_source_url`` (:mod:`sf_platform.core.licenses`).
- ``content_hash``: what a model trains on (task, template, question, answer, image, size,
  objects, fact), so a release diff tells a changed pair from an unchanged one with the same
  ``qa_id``.  ``evidence`` is left out: a new depth estimate that keeps the answer changes
  nothing a trainer sees.
"""

from __future__ import annotations

import hashlib

import orjson
import pyarrow as pa

from sf_platform.core import licenses, schemas

RELEASE_ROWS = pa.schema(
    list(schemas.QA)
    + [
        ("license", pa.string()),
        ("image_author", pa.string()),
        ("image_source_url", pa.string()),
        ("content_hash", pa.string()),
    ]
)
_HASHED = ("task", "template_id", "question", "answer", "image_uri", "width", "height", "objects", "fact")


def image_ref(source: str, file_name: str | None) -> str:
    """``<source>/<file_name>`` (file_name relative to the source's images root)."""
    return f"{source}/{(file_name or '').replace(chr(92), '/').lstrip('/')}"


def content_hashes(table: pa.Table) -> pa.Array:
    cols = {c: table.column(c).to_pylist() for c in _HASHED}
    out = []
    for vals in zip(*cols.values()):
        blob = orjson.dumps(vals, option=orjson.OPT_SORT_KEYS)
        out.append(hashlib.sha256(blob).hexdigest()[:16])
    return pa.array(out, pa.string())


def release_rows(qa: pa.Table, terms: licenses.SourceTerms, per_image: pa.Table | None = None) -> pa.Table:
    """One source's QA rows -> release rows (schema :data:`RELEASE_ROWS`)."""
    refs = [image_ref(s, f) for s, f in zip(qa.column("source").to_pylist(), qa.column("file_name").to_pylist())]
    qa = qa.set_column(qa.schema.get_field_index("image_uri"), "image_uri", pa.array(refs, pa.string()))
    qa = licenses.attach(qa, terms, per_image)
    qa = qa.append_column("content_hash", content_hashes(qa))
    return schemas.conform(qa, RELEASE_ROWS)
