"""The release audit, streamed: one group of partitions at a time, release-wide figures summed.

Loading every QA table and the whole scene of a release at once grew peak memory with the
release (0.36 + 0.78 Q + 0.78 O GiB for Q million QA rows and O million objects: 45 GiB at
2.8M images).  Here memory is bounded by one *chunk*: consecutive partitions whose QA tables
hold at most ``chunk_rows`` rows together (one partition when it alone is bigger).

- Chunks never span sources (:func:`_chunks` says why).
- Per chunk, each task's rows go through the same suite as a QA partition
  (:func:`~sf_platform.quality.suites.validate_qa`), restricted to the per-row checks (boxes,
  answers, identity, pairs per image).  A per-row check over the release is the sum of its
  outcomes over chunks: passed when every chunk passed, unexpected rows added up.  Images
  never span partitions, so pairs-per-image and image identity are exact per chunk.
- Only the columns the checks read are loaded: the QA columns of the suite, the scene's ids,
  boxes and image size (about 70 of its ~684 bytes per object), the images' URIs.
- The release-wide checks (balance shares, category share, volume floors and caps:
  :func:`~sf_platform.quality.suites.is_release_wide`) are judged once per task from figures
  summed over chunks (rows, rows and sums of each balance signal, rows per category, images
  with pairs), through the same GX expectations on one-row frames.
- The report gets exact counts and a bounded sample: every pair of a deterministic sample of
  images (at most about ``sample_rows`` pairs), so per-image and balance plots stay unbiased.

Across chunks ``qa_id`` uniqueness is not re-checked: a qa_id hashes its source and image id,
and images belong to one partition, so a duplicate would need the same image in two shards.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.schemas import QA, TASKS
from sf_platform.quality.derived import DerivedFrames, _frame
from sf_platform.quality.gx_runner import run_checks
from sf_platform.quality.suites import (
    ERROR,
    ExpectationOutcome,
    ValidationReport,
    build_checks,
    is_release_wide,
    validate_qa,
)
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore

# ~1.5M QA rows hold ~1 GiB in Arrow plus derived frames: a chunk that keeps the 2.8M-image
# audit under a few GiB, yet large enough that GX's fixed cost (~0.3 s per validation) stays
# small against the rows it checks.
DEFAULT_CHUNK_ROWS = 1_500_000
# Pairs kept for the report's plots and gallery.
DEFAULT_SAMPLE_ROWS = 200_000
# What the per-row checks read (suites.validate_qa) plus what the report plots.
QA_COLUMNS = ["qa_id", "task", "source", "image_id", "image_uri", "file_name", "question", "answer", "template_id",
              "objects", "fact", "evidence"]
SCENE_COLUMNS = ["image_id", "object_id", "bbox_1000", "bbox_px", "width", "height"]


@dataclass
class ReleaseAudit:
    validation: dict  # task -> ValidationReport over the whole release
    counts: dict[str, dict[str, int]]  # task -> source -> pairs
    images_with_qa: int
    sample: dict[str, pa.Table]  # task -> every pair of the sampled images
    chunks: int = 0

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.validation.values())

    def failures(self) -> dict[str, list]:
        return {t: [o for o in v.failures() if o.severity == ERROR] for t, v in self.validation.items()
                if not v.passed}


@dataclass
class _TaskSums:
    """What the release-wide checks need of one task, summed over chunks."""

    rows: int = 0
    seconds: float = 0.0
    signal_rows: Counter = field(default_factory=Counter)
    signal_sum: Counter = field(default_factory=Counter)
    categories: Counter = field(default_factory=Counter)
    images_with_pairs: int = 0
    outcomes: dict = field(default_factory=dict)  # check name -> merged ExpectationOutcome

    def add(self, rep: ValidationReport, task: str) -> None:
        d = rep.derived
        self.rows += rep.rows
        self.seconds += rep.seconds
        for key, n in d.signal_rows.items():
            self.signal_rows[key] += n
            self.signal_sum[key] += n * d.signal_share[key]
        self.categories.update(d.category_counts.get(task, {}))
        rec = d.summary.get(("volume", f"images_with_pairs/{task}"))
        self.images_with_pairs += int(rec["images_with_pairs"]) if rec else 0
        for o in rep.outcomes:
            self.outcomes[o.name] = _merge(self.outcomes.get(o.name), o)


def _merge(a: ExpectationOutcome | None, b: ExpectationOutcome) -> ExpectationOutcome:
    if a is None:
        return b
    if b.skipped:
        return a
    if a.skipped:
        return b
    return ExpectationOutcome(
        name=a.name, severity=a.severity, success=a.success and b.success,
        unexpected_count=a.unexpected_count + b.unexpected_count, element_count=a.element_count + b.element_count,
        observed=a.observed or b.observed, examples=(a.examples + b.examples)[:5], description=a.description)


def _release_wide(task: str, sums: _TaskSums, expected_images: int, settings, docs_dir: str | None) -> tuple:
    """The release-wide checks of ``task`` from its summed figures (one-row frames)."""
    share = {k: sums.signal_sum[k] / n for k, n in sums.signal_rows.items() if n}
    total = sum(sums.categories.values())
    d = DerivedFrames(frames={}, answer_vocabulary=[], allowed_answer_codes=[], tasks=[task],
                      task_rows={task: sums.rows}, signal_rows=dict(sums.signal_rows), signal_share=share,
                      expected_images=expected_images, have_scene=True, have_images=True)
    d.frames["balance"] = _frame({f"{s}/{t}": np.array([v]) for (s, t), v in share.items()})
    for (s, t), v in share.items():
        d.summary[("balance", f"{s}/{t}")] = {"key": f"{s}/{t}", "task": t, "signal": s,
                                               "rows": sums.signal_rows[(s, t)], "share": v}
    if total:
        top, n = max(sums.categories.items(), key=lambda kv: (kv[1], kv[0]))
        d.top_category[task] = (top, n / total)
        shares = np.array(list(sums.categories.values()), dtype=np.float64) / total
        d.frames[f"task.{task}"] = _frame({"row": np.zeros(len(shares), np.int64), "category_share": shares})
        d.summary[(f"task.{task}", "category_share")] = {"task": task, "top_category": top, "share": n / total}
    record = {"task": task, "rows": float(sums.rows), "images_with_pairs": float(sums.images_with_pairs)}
    d.frames["volume"] = _frame({f"{k}/{task}": np.array([record[k]]) for k in ("rows", "images_with_pairs")})
    for k in ("rows", "images_with_pairs"):
        d.summary[("volume", f"{k}/{task}")] = record
    checks = [c for c in build_checks(d, settings) if is_release_wide(c.name)]
    outcomes, index = run_checks(f"{task}.release", d, checks, QA.empty_table(), docs_dir)
    return outcomes, index


def _chunks(parts: dict[str, dict[str, str]], rows: dict[str, int], chunk_rows: int) -> list[list[str]]:
    """Consecutive partitions of one source, up to ``chunk_rows`` QA rows together.  A chunk
    never spans sources: the scene join goes by ``(image_id, object_id)``, and image ids are
    the sources' own, unique within a source only (Objects365 and PixMo may share one)."""
    out, cur, n = [], [], 0
    for p in sorted(parts):
        r = sum(rows[k] for k in parts[p].values())
        if cur and (n + r > chunk_rows or layout.split_shard_key(p)[0] != layout.split_shard_key(cur[0])[0]):
            out.append(cur)
            cur, n = [], 0
        cur.append(p)
        n += r
    return out + ([cur] if cur else [])


def _read(store: ObjectStore, keys: list[str], columns: list[str], schema: pa.Schema | None = None) -> pa.Table:
    tables = [store.read_table(k, columns=columns) for k in keys]
    if not tables:
        return pa.schema([schema.field(c) for c in columns]).empty_table() if schema else pa.table({})
    return pa.concat_tables(tables, promote_options="default")


@contextmanager
def audit_release(store: ObjectStore, keys_by_task: dict[str, list[str]], settings, *,
                  partition_of=layout.partition_of, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  sample_rows: int = DEFAULT_SAMPLE_ROWS, select=None):
    """Audit the QA tables ``keys_by_task`` (task -> keys) chunk by chunk (module doc); yields
    a :class:`ReleaseAudit` whose Data Docs live as long as the context.  ``partition_of``
    maps a QA key to its ``<source>/<shard>``; ``select(task, table)`` keeps the rows the
    release will hold (near-duplicate images out, the task mix applied), so the audit checks
    exactly what is published."""
    from sf_platform.core.schemas import IMAGES, SCENE

    parts: dict[str, dict[str, str]] = defaultdict(dict)
    for task, keys in keys_by_task.items():
        for k in keys:
            parts[partition_of(k)][task] = k
    rows = {k: store.num_rows(k) for p in parts.values() for k in p.values()}
    total = sum(rows.values())
    rate = 1.0 if total <= sample_rows else sample_rows / total
    side = {a: {layout.partition_of(k): k for k in store.list(layout.asset_prefix(a), ".parquet")}
            for a in ("scene", "images")}
    sums = {t: _TaskSums() for t in keys_by_task}
    counts: dict[str, Counter] = {t: Counter() for t in keys_by_task}
    samples: dict[str, list[pa.Table]] = {t: [] for t in keys_by_task}
    expected_images = images_with_qa = 0
    chunks = _chunks(parts, rows, chunk_rows)
    for i, chunk in enumerate(chunks):
        scene = _read(store, [side["scene"][p] for p in chunk if p in side["scene"]], SCENE_COLUMNS, SCENE)
        images = _read(store, [side["images"][p] for p in chunk if p in side["images"]], ["image_uri"], IMAGES)
        expected_images += images.num_rows
        uris = []
        for task in keys_by_task:
            qa = _read(store, [parts[p][task] for p in chunk if task in parts[p]], QA_COLUMNS, QA)
            if select is not None:
                qa = select(task, qa)
            rep = validate_qa(qa, settings, scene=scene, images=images, expected_images=images.num_rows,
                              name=task, tasks=[task], only=lambda n: not is_release_wide(n))
            sums[task].add(rep, task)
            if qa.num_rows:
                vc = pc.value_counts(pc.fill_null(qa.column("source").combine_chunks(), "<none>"))
                counts[task].update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
                uris.append(qa.column("image_uri").combine_chunks())
            samples[task].append(qa)  # filtered to the sampled images below
        distinct = pc.unique(pa.concat_arrays(uris)) if uris else pa.array([], pa.string())
        images_with_qa += len(distinct)
        keep = distinct.filter(pa.array(np.random.default_rng(i).random(len(distinct)) < rate))
        for task in keys_by_task:
            qa = samples[task].pop()
            samples[task].append(qa.filter(pc.is_in(qa.column("image_uri"), value_set=keep)) if rate < 1 else qa)
        del scene, images, qa
    with tempfile.TemporaryDirectory() as docs_dir:
        validation = {}
        for task in keys_by_task:
            s = sums[task]
            wide, index = _release_wide(task, s, expected_images, settings, f"{docs_dir}/{task}")
            outcomes = list(s.outcomes.values()) + wide
            passed = not any(o.severity == ERROR and not o.success for o in outcomes)
            validation[task] = ValidationReport(table=task, passed=passed, outcomes=outcomes, rows=s.rows,
                                                seconds=s.seconds, data_docs_index=index)
        sample = {t: pa.concat_tables(v) if v else QA.empty_table() for t, v in samples.items()}
        yield ReleaseAudit(validation=validation, counts={t: dict(c) for t, c in counts.items()},
                           images_with_qa=images_with_qa, sample=sample, chunks=len(chunks))


def release_tasks(keys_by_task: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every task, empty ones too (an empty task is a silent failure the volume floors catch)."""
    return {t: list(keys_by_task.get(t, [])) for t in TASKS}
