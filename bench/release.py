"""Release build throughput: QA tables in a local store -> a complete release (release rows,
splits, consolidated Parquet parts, three export formats, card, manifest), optionally with a
task mix, on one core.

Prints QA rows released per second, time per stage figure, release size and peak RSS.  Not a
test; run::

    .venv/bin/python bench/release.py [--objects 200000] [--images 50000] [--mix]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from machine import describe
from qa_throughput import synthetic_scene

from sf_platform.config import ReleaseSettings
from sf_platform.core.licenses import SourceTerms
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release import build_release
from sf_platform.core.release_mix import TaskMix
from sf_platform.storage.object_store import ObjectStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=200_000)
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--mix", action="store_true", help="sample half of each task (SpatialForge-like quotas)")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
    except (AttributeError, OSError):
        pass
    settings = QASettings()
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(root=f"file://{tmp}")
        scene = synthetic_scene(args.objects, args.images)
        shard = scene.column("shard").to_numpy(zero_copy_only=False)
        bounds = np.r_[0, np.flatnonzero(shard[1:] != shard[:-1]) + 1, len(shard)]
        keys: dict[str, list[str]] = {}
        for a, b in itertools.pairwise(bounds):
            part = scene.slice(a, b - a)
            sh = part.column("shard")[0].as_py()
            for task, t in generate_tasks(part, settings).items():
                key = f"assets/qa_{task}/bench/{sh}.parquet"
                store.write_table(key, t)
                keys.setdefault(task, []).append(key)
        rows = sum(store.read_table(k, columns=[]).num_rows for ks in keys.values() for k in ks)
        mix = None
        if args.mix:
            avail = {t: sum(store.read_table(k, columns=[]).num_rows for k in ks) for t, ks in keys.items()}
            mix = TaskMix(quotas={t: n // 2 for t, n in avail.items()})
        terms = {"bench": SourceTerms("bench", "objects365", "cc-by-4.0", "https://example.org")}
        t0 = time.perf_counter()
        summary = build_release(store, "bench", keys, {"profile": "real", "models": {}, "code_versions": {}},
                                settings, sources=terms, release=ReleaseSettings(mix=mix))
        dt = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp, "release/bench").rglob("*") if p.is_file())
        print(describe(f"load average {os.getloadavg()[0]:.1f}"))
        print(f"QA rows in: {rows:,}; released: {summary['total']:,} (mix: {bool(mix)})")
        print(f"release build: {dt:.1f} s = {rows / dt:,.0f} input rows/s on one core")
        print(f"release size: {size / 2**20:.1f} MiB in {len(summary['files'])} files")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
