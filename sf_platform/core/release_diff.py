"""What changed between two releases, per task and source: QA pairs added, removed, changed.

Pairs are matched by ``qa_id`` (a stable hash of the image, task, template and objects, see
``core/qa/ids.py``) and compared by ``content_hash`` (what a trainer sees, see
``core/release_rows.py``).  A new question wording with the same template id keeps the
``qa_id`` and changes the hash: *changed*; a pair whose image or objects changed has a new
``qa_id``: *removed* + *added*.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.storage.object_store import ObjectStore

INDEX_COLUMNS = ["task", "source", "qa_id", "content_hash"]
KINDS = ("added", "removed", "changed", "unchanged")


def release_index(store: ObjectStore, prefix: str, files: list[dict]) -> pa.Table:
    """``task, source, qa_id, content_hash`` of every data row of a release (both splits)."""
    keys = [f"{prefix}/{f['path']}" for f in files if f["kind"] == "data"]
    tables = [store.read_table(k, columns=INDEX_COLUMNS) for k in keys]
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in INDEX_COLUMNS})
    return pa.concat_tables(tables)


def qa_index(qa_by_task: dict[str, pa.Table]) -> pa.Table:
    """The index of QA tables as they would be released (portable image reference, content
    hash), so a diff can be shown before the release is written (its quality report)."""
    from sf_platform.core.release_rows import content_hashes, image_ref

    parts = []
    for table in qa_by_task.values():
        refs = [image_ref(s, f) for s, f in zip(table.column("source").to_pylist(),
                                                table.column("file_name").to_pylist())]
        t = table.set_column(table.schema.get_field_index("image_uri"), "image_uri", pa.array(refs, pa.string()))
        parts.append(pa.table({"task": t.column("task"), "source": t.column("source"),
                               "qa_id": t.column("qa_id"), "content_hash": content_hashes(t)}))
    return pa.concat_tables(parts) if parts else release_index(None, "", [])


def diff_index(old: pa.Table, new: pa.Table) -> dict:
    """``{task: {source: {added, removed, changed, unchanged}}}`` (only non-empty cells)."""
    j = old.join(new, "qa_id", join_type="full outer", left_suffix="_old", right_suffix="_new")
    in_old = pc.is_valid(j.column("content_hash_old"))
    in_new = pc.is_valid(j.column("content_hash_new"))
    same = pc.fill_null(pc.equal(j.column("content_hash_old"), j.column("content_hash_new")), False)
    kind = pc.if_else(pc.invert(in_old), "added",
                      pc.if_else(pc.invert(in_new), "removed", pc.if_else(same, "unchanged", "changed")))
    task = pc.coalesce(j.column("task_new"), j.column("task_old"))
    source = pc.coalesce(j.column("source_new"), j.column("source_old"))
    counts = pa.table({"task": task, "source": source, "kind": kind}).group_by(
        ["task", "source", "kind"]).aggregate([([], "count_all")])
    out: dict = {}
    for t, s, k, n in zip(*(counts.column(c).to_pylist() for c in ("task", "source", "kind", "count_all"))):
        cell = out.setdefault(t, {}).setdefault(s, dict.fromkeys(KINDS, 0))
        cell[k] = n
    return {t: dict(sorted(v.items())) for t, v in sorted(out.items())}


def totals(diff: dict) -> dict:
    out = dict.fromkeys(KINDS, 0)
    for per_source in diff.values():
        for cell in per_source.values():
            for k in KINDS:
                out[k] += cell[k]
    return out


def diff_markdown(diff: dict, old: str, new: str) -> str:
    """The diff as a Markdown table (card, report, ``sf-platform diff``)."""
    t = totals(diff)
    lines = [(f"Changes from release `{old}` to `{new}`: {t['added']:,} added, {t['removed']:,} removed, "
             f"{t['changed']:,} changed, {t['unchanged']:,} unchanged QA pairs."), "",
             "| task | source | added | removed | changed | unchanged |", "|---|---|---|---|---|---|"]
    for task, per_source in diff.items():
        for source, c in per_source.items():
            lines.append(f"| {task} | {source} | {c['added']:,} | {c['removed']:,} | {c['changed']:,} | "
                         f"{c['unchanged']:,} |")
    return "\n".join(lines) + "\n"
