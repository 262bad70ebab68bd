"""How true are a model's facts: relation facts from model outputs checked against given data.

For a source that ships depth maps (and person keypoints), the same shard can be turned into a
scene twice: once from the given depth/keypoints, once from the configured depth (and pose)
model.  The relation facts the model scene yields (near_far, left_right, perspective) are
then checked against the given scene, fact by fact:

- every *decidable* fact is generated on both sides with the margins opened to ~0 and the
  balance caps off (:func:`open_settings`), so facts below the configured margin are seen too;
- a model fact is *checkable* when the given side decides the same pair (same objects, same
  axis) and *contradicted* when it decides it the other way round (the given data says the
  "closer" object is farther, the person's "left" is their right, ...);
- each model fact falls in a *margin bucket*: its margin over the configured threshold
  (``evidence.margin`` / the ``qa:`` margin of its kind: the log-depth or disparity margin, or
  ``left_right_margin`` of the image width), so bucket ``<1`` holds what the configured margins
  would drop and ``>=1`` what they keep; ``published`` counts the facts the configured
  settings themselves emit (the exact rule, overlap and facing confidence included).

The share contradicted per bucket is the figure a user with real weights tunes the margins
with: raise ``near_far_log_margin`` until the published error rate is one they accept.
left_right facts depend on boxes only, so with given boxes both sides agree by construction:
its rows show the box source is consistent, and measure the detector where boxes are detected.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyarrow as pa

from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings

TASKS = ("near_far", "left_right", "perspective")
BUCKETS = (0.0, 1.0, 1.5, 2.0, 4.0, math.inf)
BUCKET_LABELS = ("<1", "1-1.5", "1.5-2", "2-4", ">=4")
PUBLISHED = "published"
COLUMNS = ("task", "bucket", "facts", "checkable", "contradicted", "error_rate")
_OPPOSITE_AXIS = {"left_of_person": "lr", "right_of_person": "lr", "in_front_of_person": "fb", "behind_person": "fb"}


def open_settings(s: QASettings) -> QASettings:
    """``s`` with every margin at ~0 and no caps: each decidable fact comes out once."""
    return s.model_copy(update={
        "near_far_log_margin": 1e-9, "near_far_disparity_margin": 1e-9, "left_right_margin": 0.0,
        "left_right_max_overlap": 0.999, "min_facing_confidence": 0.0,
        "max_pairs_per_image": 1_000_000, "max_category_share": 1.0,
    })


def uncapped(s: QASettings) -> QASettings:
    """``s`` with its margins but without the balance caps (what the margins alone publish)."""
    return s.model_copy(update={"max_pairs_per_image": 1_000_000, "max_category_share": 1.0})


def _pair_key(task: str, r: dict) -> tuple:
    f = r["fact"]
    if task == "perspective":
        return (r["source"], r["image_id"], f["subject"], f["object"], _OPPOSITE_AXIS[f["predicate"]])
    return (r["source"], r["image_id"], *sorted((f["subject"], f["object"])))


def _decision(task: str, r: dict) -> str:
    """What the fact decides about its pair: the winner (closer / left) or the predicate."""
    return r["fact"]["predicate"] if task == "perspective" else r["fact"]["subject"]


def _threshold(task: str, r: dict, s: QASettings, depth_kind: str) -> float:
    """The configured threshold the fact's ``evidence.margin`` is measured against."""
    depth_margin = s.near_far_log_margin if depth_kind == "metric" else s.near_far_disparity_margin
    if task == "near_far":
        return s.near_far_log_margin if r["evidence"]["note"] == "metric" else s.near_far_disparity_margin
    if task == "perspective" and r["evidence"]["depth_a"] is not None:
        return depth_margin
    return 1000.0 * s.left_right_margin


def bucket_of(ratio: float) -> str:
    k = int(np.searchsorted(BUCKETS, ratio, side="right")) - 1
    return BUCKET_LABELS[min(max(k, 0), len(BUCKET_LABELS) - 1)]


def _fact_id(r: dict) -> tuple:
    f = r["fact"]
    return (r["source"], r["image_id"], f["subject"], f["predicate"], f["object"])


def compare_facts(given_scene: pa.Table, model_scene: pa.Table, settings: QASettings) -> list[dict]:
    """One record per model-made fact: task, bucket, ratio, checkable, contradicted, published."""
    opened = open_settings(settings)
    given = generate_tasks(given_scene, opened, TASKS)
    model = generate_tasks(model_scene, opened, TASKS)
    published = generate_tasks(model_scene, uncapped(settings), TASKS)
    kinds = [k for k in model_scene.column("depth_kind").to_pylist() if k] if model_scene.num_rows else []
    depth_kind = "metric" if kinds and all(k == "metric" for k in kinds) else "disparity"
    out = []
    for task in TASKS:
        truth = {_pair_key(task, r): _decision(task, r) for r in given[task].to_pylist()}
        kept = {_fact_id(r) for r in published[task].to_pylist()}
        for r in model[task].to_pylist():
            thr = _threshold(task, r, settings, depth_kind)
            margin = r["evidence"]["margin"]
            ratio = math.inf if thr <= 0 else (margin or 0.0) / thr
            said = truth.get(_pair_key(task, r))
            out.append({
                "task": task, "bucket": bucket_of(ratio), "ratio": ratio,
                "checkable": said is not None, "contradicted": said is not None and said != _decision(task, r),
                "published": _fact_id(r) in kept,
            })
    return out


def summarize(records: list[dict]) -> pa.Table:
    """Per task: one row per margin bucket, then the ``published`` row (``COLUMNS``)."""
    rows = []
    for task in TASKS:
        recs = [r for r in records if r["task"] == task]
        groups = [(b, [r for r in recs if r["bucket"] == b]) for b in BUCKET_LABELS]
        groups.append((PUBLISHED, [r for r in recs if r["published"]]))
        for bucket, rs in groups:
            checkable = sum(r["checkable"] for r in rs)
            wrong = sum(r["contradicted"] for r in rs)
            rows.append({"task": task, "bucket": bucket, "facts": len(rs), "checkable": checkable,
                         "contradicted": wrong, "error_rate": wrong / checkable if checkable else None})
    schema = pa.schema([("task", pa.string()), ("bucket", pa.string()), ("facts", pa.int64()),
                        ("checkable", pa.int64()), ("contradicted", pa.int64()), ("error_rate", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)


def _cells(r: dict) -> list[str]:
    err = "-" if r["error_rate"] is None else f"{100 * r['error_rate']:.1f}%"
    return [r["task"], r["bucket"], f"{r['facts']:,}", f"{r['checkable']:,}", f"{r['contradicted']:,}", err]


HEADER = ["task", "margin / threshold", "model facts", "checkable", "contradicted", "error"]


def format_table(summary: pa.Table) -> str:
    """The summary as a Markdown table (what the CLI prints and the README shows)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in summary.to_pylist()]
    return "\n".join(lines)


def render_html(summary: pa.Table, meta: dict) -> str:
    """A standalone HTML page of the summary and what it was measured on (``meta``)."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADER)
    body = "".join(
        f'<tr class="{e(r["bucket"] == PUBLISHED and "published" or "")}">'
        + "".join(f"<td>{e(c)}</td>" for c in _cells(r)) + "</tr>"
        for r in summary.to_pylist()
    )
    facts = "".join(f"<li><b>{e(str(k))}</b>: {e(str(v))}</li>" for k, v in meta.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Model fact evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}tr.published{font-weight:bold}"
        "</style></head><body><h1>How true are the model's relation facts</h1>"
        "<p>Relation facts made from the configured depth/pose model, checked against the source's "
        "given depth and keypoints. <i>margin / threshold</i>: the fact's margin over the configured "
        "<code>qa:</code> threshold (&lt;1 = dropped by the configured margins); <i>published</i>: the "
        "facts the configured settings emit.</p>"
        f"<ul>{facts}</ul><table><tr>{head}</tr>{body}</table></body></html>"
    )
