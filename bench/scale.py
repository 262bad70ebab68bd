"""SpatialForge-scale rehearsal: scene tables -> QA -> release checks -> release write.

Builds synthetic scene tables (no pixels) for ``--images`` images at ``--objects-per-image``
objects each, sharded as in production (``--shard-images`` images per shard, one scene,
images and six QA Parquet tables per shard in an object store), and runs, through the same
code path as the pipeline:

1. QA generation per shard (``sf_platform.core.qa.generate.generate_tasks``) and its Parquet
   writes (``ObjectStore.write_table``, what the IO manager does);
2. the release audit (``sf_platform.quality.release_audit.audit_release``, streamed);
3. the release write (``sf_platform.core.release.build_release``: data, JSONL exports, card,
   staged and published).

Prints wall time and peak RSS per phase, QA pairs per task against the SpatialForge-10M mix
(scaled to the images run), Parquet bytes per pair and QA generation pairs/s including
Parquet.  Not a test, no asserts on time; run::

    .venv/bin/python bench/scale.py --images 100000 [--store /tmp/sf_scale] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from machine import describe
from qa_throughput import synthetic_scene

from sf_platform.core import schemas
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release import build_release
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore

# SpatialForge-10M's pairs per task (its card, seeds/SpatialForge-10M-card.md) from 2.8M images.
SPATIALFORGE_IMAGES = 2_800_000
SPATIALFORGE_MIX = {"grounding": 3_600_000, "referring": 3_600_000, "counting": 495_000,
                    "near_far": 2_600_000, "left_right": 93_000, "perspective": 8_000}
SOURCE = "bench"


class PeakRSS:
    """Peak resident memory of this process while the context runs (sampled every 50 ms)."""

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def shard_scene(i: int, images: int, per_image: int) -> pa.Table:
    """One shard's scene: ids made unique across shards (``<shard>-img<k>``)."""
    shard = layout.shard_name(i)
    t = synthetic_scene(images * per_image, images, seed=i, source=SOURCE)
    prefix = pa.scalar(f"{shard}-")
    image_id = pc.binary_join_element_wise(prefix, t.column("image_id"), "")
    uri = pc.binary_join_element_wise(pa.scalar(f"s3://bucket/{SOURCE}/images/"), image_id, ".jpg")
    t = t.set_column(t.schema.get_field_index("image_id"), "image_id", image_id)
    t = t.set_column(t.schema.get_field_index("image_uri"), "image_uri", uri)
    return t.set_column(t.schema.get_field_index("shard"), "shard", pa.array([shard] * t.num_rows))


def phase(name: str, results: dict):
    class _Phase:
        def __enter__(self):
            self.t0, self.cpu, self.rss = time.perf_counter(), time.process_time(), PeakRSS().__enter__()
            return self

        def __exit__(self, *exc):
            self.rss.__exit__(*exc)
            results[name] = (time.perf_counter() - self.t0, self.rss.peak, time.process_time() - self.cpu)
            wall, peak, cpu = results[name]
            print(f"[{name}] wall {wall:,.1f} s, CPU {cpu:,.1f} s, peak RSS {peak / 2**30:.2f} GiB", flush=True)

    return _Phase()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--objects-per-image", type=int, default=10)
    ap.add_argument("--shard-images", type=int, default=1000)
    ap.add_argument("--store", default=None, help="folder of the file:// store (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = ap.parse_args()
    root = Path(args.store or tempfile.mkdtemp(prefix="sf_scale_"))
    shutil.rmtree(root, ignore_errors=True)
    store = ObjectStore(root=f"file://{root}")
    settings = QASettings()
    n_shards = -(-args.images // args.shard_images)
    results: dict = {}
    rows: dict[str, int] = dict.fromkeys(schemas.TASKS, 0)
    keys: dict[str, list[str]] = {t: [] for t in schemas.TASKS}
    t_gen = t_pq = 0.0
    qa_bytes = 0
    print(f"machine: {describe()}; other processes share it (load {os.getloadavg()[0]:.1f})")
    print(f"{args.images:,} images x {args.objects_per_image} objects, {n_shards:,} shards, store {store.root}")
    t_all = time.perf_counter()
    with phase("scene+qa", results):
        for i in range(n_shards):
            n = min(args.shard_images, args.images - i * args.shard_images)
            pk = layout.shard_key(SOURCE, layout.shard_name(i))
            scene = shard_scene(i, n, args.objects_per_image)
            store.write_table(layout.asset_key("scene", pk), scene)
            store.write_table(layout.asset_key("images", pk), pa.table({"image_uri": pc.unique(scene.column("image_uri"))}))
            t1 = time.perf_counter()
            tables = generate_tasks(scene, settings)
            t2 = time.perf_counter()
            for task, table in tables.items():
                key = layout.asset_key(f"qa_{task}", pk)
                store.write_table(key, table)
                qa_bytes += os.path.getsize(store._path(key))
                keys[task].append(key)
                rows[task] += table.num_rows
            t_gen += t2 - t1
            t_pq += time.perf_counter() - t2
    total = sum(rows.values())
    from sf_platform.quality.release_audit import audit_release

    with phase("audit", results), audit_release(store, keys, settings) as audit:
        passed, chunks = audit.passed, audit.chunks
        failed = {t: [o.name for o in fs] for t, fs in audit.failures().items()}
    provenance = {"profile": "real", "models": {}, "code_versions": {}}
    with phase("release", results):
        summary = build_release(store, "scale", keys, provenance, settings)
    wall = time.perf_counter() - t_all
    rel_bytes = sum(os.path.getsize(p) for p in Path(store._path("release/scale")).rglob("*") if p.is_file())

    cpu = sum(r[2] for r in results.values())
    print(f"\nwall {wall:,.1f} s (CPU {cpu:,.1f} s: the machine is shared); peak RSS {max(r[1] for r in results.values()) / 2**30:.2f} GiB")
    print(f"audit: {'passed' if passed else 'FAILED ' + str(failed)} in {chunks} chunk(s)")
    scale = args.images / SPATIALFORGE_IMAGES
    print(f"{'task':12s} {'pairs':>12s} {'per image':>9s} {'SF-10M mix x' + format(scale, '.4f'):>22s} {'ratio':>7s}")
    for t in schemas.TASKS:
        want = SPATIALFORGE_MIX[t] * scale
        print(f"{t:12s} {rows[t]:>12,} {rows[t] / args.images:>9.2f} {want:>22,.0f} {rows[t] / want:>7.2f}")
    print(f"{'total':12s} {total:>12,} {total / args.images:>9.2f} {sum(SPATIALFORGE_MIX.values()) * scale:>22,.0f}")
    print(f"QA generation: {total / (t_gen + t_pq):,.0f} pairs/s incl. Parquet "
          f"({total / t_gen:,.0f} generation only; {t_gen:.1f} s + {t_pq:.1f} s Parquet)")
    print(f"bytes per pair: {qa_bytes / max(total, 1):.1f} (QA Parquet, zstd); release {rel_bytes / max(total, 1):.1f} "
          f"(data + 3 JSONL exports + card), {summary['total']:,} pairs released")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
