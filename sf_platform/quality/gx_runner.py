"""Runs the checks of :mod:`sf_platform.quality.suites` through Great Expectations 1.x.

Great Expectations is imported here, inside :func:`run_checks`, and nowhere else: its import
takes seconds, which only a process that validates should pay.  Each call builds an
ephemeral context (no files unless Data Docs are asked for), with usage analytics and progress
bars off (an unattended pipeline step must neither phone home nor spam its logs).

One GX suite per derived frame (``pairs``, ``objects``, ``task.<t>``, ``balance``,
``volume`` ...), validated as a whole-dataframe batch of one shared pandas asset; every GX
expectation carries its check's name in ``meta["check"]`` and the results are folded back into
one :class:`~sf_platform.quality.types.ExpectationOutcome` per check.

What keeps it cheap: GX's pandas engine fingerprints every batch by hashing all of its values
(no batch definition of the pandas data source avoids it), so GX gets only the columns its
expectations read, and suites are built complete rather than stored expectation by
expectation.  Without Data Docs each suite runs through GX's public ``Batch.validate``,
skipping the stores of suite, validation definition and result that only Data Docs read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from sf_platform.quality.derived import DerivedFrames
from sf_platform.quality.types import Check, ExpectationOutcome

DOCS_SITE = "sf_quality"
EXAMPLES = 5
# BASIC: success, counts and a few unexpected values, without per-row index lists (see
# offending_rows for why).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}
# Data Docs pages load jQuery/Bootstrap from public CDNs, run inline scripts that need them,
# and show logos hosted on S3; the report must open on a machine without internet and without
# console errors, so all scripts and remote assets are removed and a small inline style takes
# over.  The validation pages are plain HTML tables underneath and stay readable.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL)
_REMOTE_TAG = re.compile(r"<(?:link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
# GX links the favicon one folder too shallow for suites with dotted names (a 404 per page).
_FAVICON = re.compile(r"<link\b[^>]*rel=[\"']?(?:shortcut )?icon[^>]*>", re.IGNORECASE)
_REMOTE_CSS_URL = re.compile(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", re.IGNORECASE)
_OFFLINE_CSS = (
    "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
    "vertical-align:top}.collapse:not(.show){display:block}.invisible,.fixed-bottom{display:none}"
    "code,pre{font-size:.85em}.text-danger{color:#b00020}.text-success{color:#0a7d32}</style>"
)


def _gx():
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    return gx, gxe, ProgressBarsConfig


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def offending_rows(df, cls: str, kw: dict, limit: int = EXAMPLES) -> tuple[np.ndarray, list]:
    """Row numbers (``df.row``) and values of the first ``limit`` rows a failed expectation
    rejects.  GX decides success and counts; this only picks examples, because asking GX for
    ``unexpected_index_column_names`` makes it list every failing row's index, which on a large
    frame where many rows fail costs far more than the validation itself."""
    if cls == "ExpectColumnValuesToBeBetween" or cls == "ExpectColumnValuesToBeInSet" or cls == "ExpectColumnValuesToNotBeNull" or cls == "ExpectColumnValuesToBeUnique":
        col = df[kw["column"]]
        if kw.get("row_condition"):
            col = col[df.eval(kw["row_condition"])]
        present = col.notna()
        if cls == "ExpectColumnValuesToBeBetween":
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.zeros(len(v), dtype=bool)
            with np.errstate(invalid="ignore"):
                if kw.get("min_value") is not None:
                    bad |= (v <= kw["min_value"]) if kw.get("strict_min") else (v < kw["min_value"])
                if kw.get("max_value") is not None:
                    bad |= (v >= kw["max_value"]) if kw.get("strict_max") else (v > kw["max_value"])
            bad &= present.to_numpy()
        elif cls == "ExpectColumnValuesToBeInSet":
            bad = (present & ~col.isin(kw["value_set"])).to_numpy()
        elif cls == "ExpectColumnValuesToNotBeNull":
            bad = (~present).to_numpy()
        else:
            bad = (present & col.duplicated(keep=False)).to_numpy()
        idx = np.nonzero(bad)[0][:limit]
        pos = col.index.to_numpy()[idx]  # frames keep a RangeIndex: labels are positions
        return _rows(df, pos), [_plain(x) for x in col.to_numpy()[idx]]
    if cls in ("ExpectColumnPairValuesAToBeGreaterThanB", "ExpectColumnPairValuesToBeEqual"):
        a, b = df[kw["column_A"]].to_numpy(np.float64), df[kw["column_B"]].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            if cls == "ExpectColumnPairValuesToBeEqual":
                bad = a != b
            else:
                bad = ~((a >= b) if kw.get("or_equal") else (a > b))
        bad &= ~(np.isnan(a) | np.isnan(b))
        idx = np.nonzero(bad)[0][:limit]
        return _rows(df, idx), [{kw["column_A"]: _plain(a[i]), kw["column_B"]: _plain(b[i])} for i in idx]
    return np.zeros(0, np.int64), []


def _rows(df, positions: np.ndarray) -> np.ndarray:
    """QA row numbers of frame positions (frames without ``row`` are row-aligned with the QA)."""
    return df["row"].to_numpy()[positions] if "row" in df.columns else np.asarray(positions)


def _examples(qa: pa.Table, frame: str, derived: DerivedFrames, cls: str, kw: dict, limit: int) -> list[dict]:
    df = derived.frames[frame]
    rows, values = offending_rows(df, cls, kw, limit)
    column = kw.get("column") or "value"
    if column == "answer_code":  # show "<task>/<template> -> <answer>", not its code
        column, values = "answer_key", [derived.answer_vocabulary[int(v)] if v is not None and v >= 0 else None for v in values]
    if (frame, kw.get("column")) in derived.summary:  # a balance/volume figure: show its record
        return [{k: _plain(v) for k, v in derived.summary[(frame, kw["column"])].items()}] if len(rows) else []
    if not len(rows):
        return []
    cols = [c for c in ("qa_id", "task", "template_id", "image_id", "question", "answer") if c in qa.column_names]
    sub = qa.select(cols).take(pa.array(rows, pa.int64())).to_pylist()
    return [{**r, column: v} for r, v in zip(sub, values)]


def _fold(check: Check, results: list, qa: pa.Table, derived: DerivedFrames) -> ExpectationOutcome:
    """One outcome from a check's GX results (AND of successes, sum of unexpected rows)."""
    success = True
    unexpected = 0
    element = 0
    observed = dict(check.observed)
    examples: list[dict] = []
    for (frame, cls, kw), r in results:
        res = r.result or {}
        success &= bool(r.success)
        exc = r.exception_info if isinstance(r.exception_info, dict) else {}
        if exc.get("raised_exception"):
            observed["exception"] = str(exc.get("exception_message"))[:300]
        if frame == "balance":  # a share: count the rows that would have to flip to reach the band
            n, share = int(check.observed.get("rows", 0)), float(check.observed.get("share", 0.0))
            lo, hi = kw.get("min_value"), kw.get("max_value")
            element = max(element, n)
            if not r.success:
                edge = hi if share > hi else lo
                unexpected += int(np.ceil(abs(share - edge) * n))
                examples += _examples(qa, frame, derived, cls, kw, EXAMPLES)
            continue
        element = max(element, int(res.get("element_count", 0)))
        unexpected += int(res.get("unexpected_count", 0))
        if not r.success and len(examples) < EXAMPLES:
            examples += _examples(qa, frame, derived, cls, kw, EXAMPLES - len(examples))
    if check.skipped_reason is not None:
        observed["skipped"] = check.skipped_reason
    return ExpectationOutcome(
        name=check.name, severity=check.severity, success=success, unexpected_count=unexpected,
        element_count=element, observed=observed, examples=examples, description=check.description,
        skipped=check.skipped_reason is not None,
    )


def run_checks(
    table: str, derived: DerivedFrames, checks: list[Check], qa: pa.Table, data_docs_dir: str | None
) -> tuple[list[ExpectationOutcome], str | None]:
    """Validate the derived frames; returns the outcomes (in ``checks`` order) and the local
    path of the Data Docs index when ``data_docs_dir`` is given (each outcome's ``docs_page``
    then names its validation page, relative to ``data_docs_dir``)."""
    gx, gxe, ProgressBarsConfig = _gx()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    site = _add_docs_site(ctx, data_docs_dir) if data_docs_dir else None
    # One asset and batch definition serve every frame (the frame is a batch parameter): each
    # asset added re-serialises the whole context config, which grows with every asset.
    source = ctx.data_sources.add_pandas(f"{_slug(table)}_derived")
    batch = source.add_dataframe_asset(name="derived").add_batch_definition_whole_dataframe("whole")
    specs: dict[str, list] = {}
    for c in checks:
        if c.skipped_reason is None:
            for i, (frame, cls, kw) in enumerate(c.gx):
                specs.setdefault(frame, []).append((c, i, cls, kw))
    by_check: dict[str, list] = {c.name: [] for c in checks}
    pages: dict[str, str] = {}
    for frame, items in specs.items():
        df = _columns_for(derived.frames[frame], [kw for _, _, _, kw in items])
        suite = gx.ExpectationSuite(name=f"{_slug(table)}.{frame}", expectations=[
            getattr(gxe, cls)(**kw, meta={"check": c.name, "part": i, "severity": c.severity}) for c, i, cls, kw in items])
        if site is not None:
            results = _run_with_docs(gx, ctx, batch, suite, df, site)
            pages[frame] = _newest_page(data_docs_dir, suite.name)
        else:
            results = _run(batch, suite, df)
        for r in results:
            meta = r.expectation_config.meta
            c = next(c for c in checks if c.name == meta["check"])
            by_check[c.name].append((c.gx[int(meta["part"])], r))
    outcomes = []
    for c in checks:
        o = _fold(c, by_check[c.name], qa, derived)
        frames_of = {f for f, _, _ in c.gx}
        o.docs_page = next((pages[f] for f in frames_of if f in pages), None)
        outcomes.append(o)
    index = None
    if site is not None:
        make_offline(data_docs_dir)
        index = str(Path(data_docs_dir) / "index.html")
    return outcomes, index


def _run(batch_definition, suite, df) -> list:
    """GX results of ``suite`` on ``df`` through the public ``Batch.validate`` (no stored
    suite, validation definition or result: that bookkeeping only pays off for Data Docs, see
    :func:`_run_with_docs`)."""
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    return batch.validate(suite, result_format=RESULT_FORMAT).results


def _run_with_docs(gx, ctx, batch_definition, suite, df, site: str) -> list:
    """GX results of ``suite`` on ``df`` through a stored suite, validation definition and
    checkpoint whose action renders the validation page into ``site``."""
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite))
    cp = ctx.checkpoints.add(gx.Checkpoint(
        name=f"{suite.name}.checkpoint", validation_definitions=[vd], result_format=RESULT_FORMAT,
        actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[site])]))
    run = cp.run(batch_parameters={"dataframe": df})
    return [r for vr in run.run_results.values() for r in vr.results]


def _columns_for(df, kwargs: list[dict]):
    """``df`` narrowed to the columns its expectations read (and their row conditions name).

    GX fingerprints every batch by hashing all of its values and copies whole frames for
    column-pair expectations, so
    bookkeeping columns such as ``row`` (kept in the derived frame for showing offending rows)
    stay out.  Derived frames hold one block per column, so the selection copies nothing."""
    used: set[str] = set()
    for kw in kwargs:
        used.update(kw[k] for k in ("column", "column_A", "column_B") if k in kw)
        condition = kw.get("row_condition") or ""
        used.update(c for c in df.columns if re.search(rf"\b{re.escape(str(c))}\b", condition))
    return df[[c for c in df.columns if c in used]]


def _newest_page(data_docs_dir: str, suite_name: str) -> str | None:
    """Relative path of the newest validation page of ``suite_name`` (GX nests it as
    validations/<suite name, dots as folders>/<run>/<time>/<batch>.html)."""
    folder = Path(data_docs_dir, "validations", *suite_name.split("."))
    found = sorted(folder.rglob("*.html"), key=lambda p: p.stat().st_mtime)
    return str(found[-1].relative_to(data_docs_dir)) if found else None


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s) or "qa"


def _add_docs_site(ctx, data_docs_dir: str) -> str:
    """Our own Data Docs site in ``data_docs_dir`` (the ephemeral context's ``local_site``
    writes into a temp folder we do not control)."""
    Path(data_docs_dir).mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(data_docs_dir).resolve())},
        },
    )
    return DOCS_SITE


def make_offline(folder: str) -> int:
    """Strip scripts and remote assets from every HTML page under ``folder`` and inline a
    minimal stylesheet; returns how many pages were rewritten."""
    changed = 0
    for path in Path(folder).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        new = _REMOTE_CSS_URL.sub("none", _FAVICON.sub("", _REMOTE_TAG.sub("", _SCRIPT.sub("", text))))
        if new != text:
            new = new.replace("</head>", _OFFLINE_CSS + "</head>", 1)
            path.write_text(new, encoding="utf-8")
            changed += 1
    return changed
