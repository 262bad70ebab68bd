"""The release's data-quality report: one static, self-contained HTML page with its plots,
gallery thumbnails and the GX Data Docs beside it, written through the ObjectStore.

Self-contained means: no external URL is loaded (no CDN, no web font, no script from
elsewhere; the machines that read it may have no internet), styles are inline, plots and
thumbnails are files next to ``index.html`` referenced by relative paths.  Every file is
written atomically and ``index.html`` last, so a reader that finds the index finds everything
it links to.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.settings import QASettings
from sf_platform.quality import plots
from sf_platform.quality.gallery import build_gallery
from sf_platform.quality.suites import ERROR, ValidationReport
from sf_platform.storage.object_store import ObjectStore

# Large animated GIFs of GX's own "getting started" banner: not referenced once scripts are
# stripped (gx_runner.make_offline), so they are not copied into the release.
_DOCS_SKIP = re.compile(r"\.gif$", re.IGNORECASE)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:1rem 2rem}header h1{margin:.2rem 0;font-size:1.5rem}
main{padding:1rem 2rem;max-width:1400px}section{background:#fff;border:1px solid #dde2e8;border-radius:6px;
padding:1rem 1.25rem;margin:1rem 0}h2{margin-top:0;font-size:1.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #dde2e8;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#0a7d32;font-weight:600}.fail-ERROR{color:#fff;background:#c0392b;padding:0 .3rem;border-radius:3px}
.fail-WARN{color:#1d2329;background:#f5c542;padding:0 .3rem;border-radius:3px}.skip{color:#777}
.headline{display:flex;flex-wrap:wrap;gap:1rem}.headline div{background:#eef1f5;border-radius:6px;padding:.5rem 1rem}
.headline b{display:block;font-size:1.4rem}.plots{display:flex;flex-wrap:wrap;gap:1rem}
.plots figure{margin:0}.plots img{max-width:100%;border:1px solid #dde2e8}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}.qa-sample{width:480px;margin:0;border:1px solid #dde2e8;
border-radius:6px;overflow:hidden;background:#fafbfc}.qa-sample img{display:block;max-width:100%}
.qa-sample figcaption{padding:.5rem;font-size:.85rem}.q{font-weight:600}.a{color:#0b5394;margin-top:.25rem;
overflow-wrap:anywhere}.meta{color:#777;font-size:.75rem;margin-top:.25rem}.qa-sample .meta{overflow-wrap:anywhere}
td a{white-space:nowrap}
.missing{padding:2rem;color:#c0392b}details{font-size:.8rem}pre{white-space:pre-wrap;word-break:break-word;margin:.25rem 0}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else _e(x)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s) or "table"


# --- data ---------------------------------------------------------------------------------------


def counts_by_task_source(qa_by_task: dict[str, pa.Table]) -> dict[str, dict[str, int]]:
    """task -> source -> QA rows."""
    out: dict[str, dict[str, int]] = {}
    for task, t in qa_by_task.items():
        out[task] = {}
        if t.num_rows:
            vc = pc.value_counts(pc.fill_null(t.column("source").combine_chunks(), "<none>"))
            for s, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                out[task][s] = int(c)
    return out


def headline(qa_by_task, funnel: dict, validation: dict[str, ValidationReport], *,
             counts: dict[str, dict[str, int]] | None = None, images_with_qa: int | None = None) -> dict:
    """Headline figures; ``counts`` and ``images_with_qa`` are the exact figures of a streamed
    audit, whose ``qa_by_task`` is only a sample (default: counted from ``qa_by_task``)."""
    counts = counts if counts is not None else counts_by_task_source(qa_by_task)
    total = sum(sum(v.values()) for v in counts.values())
    images = images_with_qa if images_with_qa is not None else len(plots.qa_per_image(qa_by_task))
    failed_err = sum(1 for r in validation.values() for o in r.failures() if o.severity == ERROR)
    failed_warn = sum(1 for r in validation.values() for o in r.failures() if o.severity != ERROR)
    return {
        "qa_pairs": total,
        "images_with_qa": images,
        "curated_images": int(funnel.get("curated", 0)),
        "source_images": int(funnel.get("images", 0)),
        "checks_passed": all(r.passed for r in validation.values()),
        "failed_error": failed_err,
        "failed_warn": failed_warn,
    }


def report_summary_markdown(qa_by_task: dict[str, pa.Table], funnel: dict, validation: dict[str, ValidationReport],
                            *, counts: dict[str, dict[str, int]] | None = None, images_with_qa: int | None = None) -> str:
    """Headline numbers for the Dagster UI (markdown)."""
    counts = counts if counts is not None else counts_by_task_source(qa_by_task)
    h = headline(qa_by_task, funnel, validation, counts=counts, images_with_qa=images_with_qa)
    status = "all checks passed" if h["checks_passed"] else f"**{h['failed_error']} ERROR expectation(s) failed**"
    lines = [
        (f"**{h['qa_pairs']:,} QA pairs** on {h['images_with_qa']:,} images "
         f"({h['curated_images']:,} curated of {h['source_images']:,} source images); {status}, "
         f"{h['failed_warn']} warning(s)."),
        "",
        "| task | pairs |",
        "|---|---|",
    ]
    lines += [f"| {task} | {sum(counts.get(task, {}).values()):,} |" for task in qa_by_task]
    dropped = funnel.get("dropped") or {}
    if dropped:
        top = sorted(dropped.items(), key=lambda kv: -kv[1])[:5]
        lines += ["", "Dropped: " + ", ".join(f"{k} {v:,}" for k, v in top)]
    return "\n".join(lines)


# --- HTML sections ------------------------------------------------------------------------------


def _headline_html(h: dict) -> str:
    items = [("QA pairs", h["qa_pairs"]), ("images with QA", h["images_with_qa"]),
             ("curated images", h["curated_images"]), ("source images", h["source_images"]),
             ("ERROR failures", h["failed_error"]), ("warnings", h["failed_warn"])]
    return '<div class="headline">' + "".join(f"<div>{_e(k)}<b>{_n(v)}</b></div>" for k, v in items) + "</div>"


def _counts_html(counts: dict[str, dict[str, int]]) -> str:
    sources = sorted({s for d in counts.values() for s in d})
    head = "<tr><th>task</th>" + "".join(f"<th>{_e(s)}</th>" for s in sources) + "<th>total</th></tr>"
    rows = []
    for task, d in counts.items():
        cells = "".join(f'<td class="num">{d.get(s, 0):,}</td>' for s in sources)
        rows.append(f"<tr><td>{_e(task)}</td>{cells}<td class=\"num\"><b>{sum(d.values()):,}</b></td></tr>")
    totals = "".join(f'<td class="num">{sum(d.get(s, 0) for d in counts.values()):,}</td>' for s in sources)
    rows.append(f"<tr><th>total</th>{totals}<td class=\"num\"><b>{sum(sum(d.values()) for d in counts.values()):,}</b></td></tr>")
    return f'<table id="counts">{head}{"".join(rows)}</table>'


def _funnel_html(funnel: dict) -> str:
    images, curated, objects = int(funnel.get("images", 0)), int(funnel.get("curated", 0)), int(funnel.get("objects", 0))
    steps = [("source images", images), ("curated images", curated), ("objects", objects)]
    steps += [(f"QA: {t}", int(n)) for t, n in (funnel.get("qa") or {}).items()]
    rows = []
    for label, n in steps:
        pct = f"{100 * n / images:.1f}% of source images" if images and "image" in label else ""
        rows.append(f'<tr><td>{_e(label)}</td><td class="num">{n:,}</td><td>{_e(pct)}</td></tr>')
    dropped = sorted((funnel.get("dropped") or {}).items(), key=lambda kv: -kv[1])
    drop_rows = "".join(f'<tr><td>{_e(k)}</td><td class="num">{int(v):,}</td></tr>' for k, v in dropped) or \
        '<tr><td colspan="2">nothing dropped</td></tr>'
    return (f'<table id="funnel"><tr><th>stage</th><th>count</th><th></th></tr>{"".join(rows)}</table>'
            f'<h3>Drop reasons (quarantine)</h3><table id="dropped"><tr><th>reason</th><th>rows</th></tr>{drop_rows}</table>')


def _outcome_row(o, docs_href: str | None) -> str:
    if o.skipped:
        res = '<span class="skip">skipped</span>'
    elif o.success:
        res = '<span class="ok">passed</span>'
    else:
        res = f'<span class="fail-{_e(o.severity)}">failed</span>'
    observed = {k: v for k, v in o.observed.items()}
    obs = _e(json.dumps(observed, default=str)) if observed else ""
    ex = ""
    if o.examples:
        ex = f"<details><summary>{len(o.examples)} example row(s)</summary><pre>{_e(json.dumps(o.examples, indent=1, default=str))}</pre></details>"
    link = f'<a href="{_e(docs_href)}">Data Docs</a>' if docs_href else ""
    return (f'<tr class="outcome" data-name="{_e(o.name)}" data-success="{str(o.success).lower()}"><td>{_e(o.name)}'
            f'<div class="meta">{_e(o.description)}</div></td><td>{_e(o.severity)}</td><td>{res}</td>'
            f'<td class="num">{o.unexpected_count:,}</td><td class="num">{o.element_count:,}</td>'
            f"<td><code>{obs}</code>{ex}</td><td>{link}</td></tr>")


def _checks_html(validation: dict[str, ValidationReport], docs_links: dict[str, dict]) -> str:
    parts = []
    for name, rep in validation.items():
        links = docs_links.get(name, {})
        status = '<span class="ok">passed</span>' if rep.passed else '<span class="fail-ERROR">FAILED</span>'
        index = links.get("index")
        idx_link = f' &middot; <a href="{_e(index)}">Data Docs</a>' if index else ""
        rows = "".join(_outcome_row(o, links.get("pages", {}).get(o.name)) for o in rep.outcomes)
        parts.append(
            f'<h3 id="checks-{_e(_slug(name))}">{_e(name)}: {status} &middot; {rep.rows:,} rows &middot; '
            f'{len(rep.failures())} failed of {len(rep.outcomes)}{idx_link}</h3>'
            '<table class="checks"><tr><th>expectation</th><th>severity</th><th>result</th><th>unexpected</th>'
            f"<th>rows</th><th>observed / examples</th><th></th></tr>{rows}</table>"
        )
    return "".join(parts) or "<p>No validation results were given.</p>"


def _gallery_html(gallery: dict, image_keys: dict[tuple[str, int], str]) -> str:
    parts = []
    for task, samples in gallery.items():
        figs = []
        for i, s in enumerate(samples):
            boxes = _e(json.dumps([{k: b[k] for k in ("category", "bbox_1000")} for b in s.boxes]))
            if s.error is None:
                img = f'<img src="{_e(image_keys[(task, i)])}" width="{s.width}" height="{s.height}" alt="{_e(s.qa_id)}">'
            else:
                img = f'<div class="missing">image unavailable: {_e(s.error)}</div>'
            figs.append(
                f'<figure class="qa-sample" data-task="{_e(task)}" data-qa-id="{_e(s.qa_id)}" data-boxes="{boxes}" '
                f'data-drawn="{str(s.error is None).lower()}">{img}<figcaption><div class="q">Q: {_e(s.question)}</div>'
                f'<div class="a">A: {_e(s.answer)}</div><div class="meta">{_e(s.qa_id)} &middot; {_e(s.image)}</div>'
                "</figcaption></figure>")
        parts.append(f'<h3>{_e(task)}</h3><div class="gallery">{"".join(figs) or "<p>no pairs</p>"}</div>')
    return "".join(parts)


# --- writing ------------------------------------------------------------------------------------


def _copy_data_docs(store: ObjectStore, prefix: str, name: str, rep: ValidationReport) -> dict:
    """Copy a report's local Data Docs folder under ``<prefix>/data_docs/<name>/``; returns
    {"index": href, "pages": {outcome name: href}} relative to the report's index.html."""
    if not rep.data_docs_index or not os.path.exists(rep.data_docs_index):
        return {}
    root = os.path.dirname(rep.data_docs_index)
    rel_root = f"data_docs/{_slug(name)}"
    for folder, _, files in os.walk(root):
        for f in files:
            if _DOCS_SKIP.search(f) or f.startswith("."):
                continue
            path = os.path.join(folder, f)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                store.write_bytes(f"{prefix}/{rel_root}/{rel}", fh.read())
    pages = {o.name: f"{rel_root}/{o.docs_page}" for o in rep.outcomes if o.docs_page}
    return {"index": f"{rel_root}/index.html", "pages": pages}


def build_report(
    store: ObjectStore,
    version: str,
    qa_by_task: dict[str, pa.Table],
    funnel: dict,
    validation: dict[str, ValidationReport],
    load_image_bytes: Callable[[str], bytes],
    out_prefix: str | None = None,
    *,
    settings: QASettings | None = None,
    gallery_per_task: int = 6,
    changes_markdown: str = "",
    counts: dict[str, dict[str, int]] | None = None,
    images_with_qa: int | None = None,
) -> str:
    """Write the report under ``out_prefix`` (default ``release/<version>/quality``); returns the
    key of its ``index.html``.  With ``counts`` (exact, from a streamed audit) ``qa_by_task`` may
    be a sample: plots and gallery come from it, the figures from ``counts``."""
    settings = settings or QASettings()
    counts = counts if counts is not None else counts_by_task_source(qa_by_task)
    sampled = sum(t.num_rows for t in qa_by_task.values())
    total = sum(sum(v.values()) for v in counts.values())
    sample_note = ("" if sampled >= total else f'<p class="meta">Distributions and gallery from every pair of a '
                   f"random sample of images: {sampled:,} of {total:,} pairs.</p>")
    prefix = (out_prefix or f"release/{version}/quality").rstrip("/")

    figures = [
        ("balance", "Answer balance per task", *plots.plot_balance(qa_by_task, settings.balance_band)),
        ("counts", "Counting answers", *plots.plot_count_histogram(qa_by_task, settings.count_cap)),
        ("box_sizes", "Box sizes", *plots.plot_box_sizes(qa_by_task)),
        ("box_centres", "Box centre positions", *plots.plot_box_centres(qa_by_task)),
        ("depth_gap", "Depth gap of near/far pairs", *plots.plot_depth_gap(qa_by_task, settings.near_far_log_margin)),
        ("categories", "Category frequency", *plots.plot_categories(qa_by_task)),
        ("qa_per_image", "QA pairs per image", *plots.plot_qa_per_image(qa_by_task)),
    ]
    for key, _, png, _ in figures:
        store.write_bytes(f"{prefix}/plots/{key}.png", png)

    gallery = build_gallery(qa_by_task, load_image_bytes, gallery_per_task)
    image_keys = {}
    for task, samples in gallery.items():
        for i, s in enumerate(samples):
            if s.jpeg is not None:
                rel = f"gallery/{_slug(task)}/{i:02d}.jpg"
                store.write_bytes(f"{prefix}/{rel}", s.jpeg)
                image_keys[(task, i)] = rel

    docs_links = {name: _copy_data_docs(store, prefix, name, rep) for name, rep in validation.items()}

    h = headline(qa_by_task, funnel, validation, counts=counts, images_with_qa=images_with_qa)
    plot_html = "".join(
        f'<figure id="plot-{key}"><img src="plots/{key}.png" alt="{_e(title)}"><figcaption class="meta">'
        f"{_e(json.dumps(data, default=str)[:400])}</figcaption></figure>"
        for key, title, _, data in figures
    )
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sf_platform data quality: {_e(version)}</title><style>{CSS}</style></head>
<body><header><h1>Data-quality report &middot; release {_e(version)}</h1>
<div>generated {_e(generated)}</div></header><main>
<section id="headline"><h2>Headline</h2>{_headline_html(h)}</section>
<section id="checks"><h2>Quality gates</h2>{_checks_html(validation, docs_links)}</section>
<section id="counts-section"><h2>QA pairs per task and source</h2>{_counts_html(counts)}</section>
<section id="funnel-section"><h2>Funnel</h2>{_funnel_html(funnel)}</section>
<section id="plots"><h2>Distributions</h2>{sample_note}<div class="plots">{plot_html}</div></section>
<section id="gallery"><h2>Gallery (spot-check by eye)</h2>{_gallery_html(gallery, image_keys)}</section>
{f'<section id="changes"><h2>Changes since the previous release</h2><pre>{_e(changes_markdown)}</pre></section>' if changes_markdown else ""}
</main></body></html>"""
    key = f"{prefix}/index.html"
    store.write_text(key, page)
    return key
