"""QA generation throughput: scene table -> QA Parquet for all six tasks, on one core.

Generates a synthetic scene table (default 1M objects over 250k images, Objects365-like:
skewed categories, a few crowd/group boxes, metric depth, people with facings), cuts it into
shards of ``--shard-images`` images as the pipeline does, runs the six generators per shard
and serializes each QA table to Parquet (zstd, as ObjectStore writes it).

Prints QA pairs per second (generation + Parquet, and generation only), Parquet bytes per QA
pair, rows per task, and the machine.  Not a test; run::

    .venv/bin/python bench/qa_throughput.py [--objects 1000000] [--images 250000]
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import platform
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from machine import describe

from sf_platform.core import schemas
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.storage.object_store import PARQUET_COMPRESSION

CATEGORIES = [
    "Person",
    "Chair",
    "Car",
    "Bottle",
    "Cup",
    "Dining Table",
    "Handbag",
    "Book",
    "Sneakers",
    "Lamp",
    "Potted Plant",
    "Bench",
    "Boat",
    "Umbrella",
    "Traffic Light",
    "Bowl",
    "Monitor/TV",
    "Backpack",
    "Truck",
    "Bus",
    "Cell Phone",
    "Clock",
    "Pillow",
    "Bicycle",
    "Horse",
    "Dog",
    "Cat",
    "Vase",
    "Knife",
    "Laptop",
    "Trash bin Can",
    "Glasses",
    "Tie",
    "Flag",
    "Boots",
    "Sink",
    "Couch",
    "Bed",
    "Airplane",
    "Kite",
]


def machine() -> str:
    return describe(platform.machine())


def synthetic_scene(
    n_objects: int, n_images: int, seed: int = 0, source: str = "bench"
) -> pa.Table:
    rng = np.random.default_rng(seed)
    img = np.sort(rng.integers(0, n_images, n_objects))
    img = np.r_[np.arange(n_images), img[: n_objects - n_images]] if n_objects >= n_images else img
    img.sort()
    w = np.full(n_objects, 800)
    h = np.full(n_objects, 600)
    p = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 1.1
    cat = rng.choice(len(CATEGORIES), n_objects, p=p / p.sum())
    x1 = rng.uniform(0, 700, n_objects)
    y1 = rng.uniform(0, 500, n_objects)
    bw = rng.uniform(20, 300, n_objects)
    bh = rng.uniform(20, 300, n_objects)
    px = np.stack([x1, y1, np.minimum(x1 + bw, 800), np.minimum(y1 + bh, 600)], axis=1)
    from sf_platform.core.boxes import px_to_1000

    b1000 = px_to_1000(px, w, h)
    depth = np.exp(rng.normal(1.2, 0.6, n_objects)).astype(np.float32)
    is_person = cat == 0
    facing = np.where(
        is_person,
        rng.choice(np.array(["toward", "away", "left", "right", "unknown"]), n_objects),
        None,
    )
    image_id = np.char.add("img", img.astype(str))
    oid = np.arange(n_objects).astype(str)
    flags = rng.random((n_objects, 3)) < np.array([0.02, 0.02, 0.01])
    fl = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), 4)
    cols = {
        "source": pa.array(np.full(n_objects, source)),
        "shard": pa.array(np.char.zfill((img // 1000).astype(str), 5)),
        "object_id": pa.array(oid),
        "image_id": pa.array(image_id),
        "category": pa.array(np.asarray(CATEGORIES, dtype=object)[cat]),
        "bbox_px": fl(px),
        "bbox_1000": fl(b1000),
        "is_crowd": pa.array(flags[:, 0]),
        "is_group": pa.array(flags[:, 1]),
        "is_depiction": pa.array(flags[:, 2]),
        "is_truncated": pa.array(rng.random(n_objects) < 0.1),
        "image_uri": pa.array(
            np.char.add(np.char.add(f"s3://bucket/{source}/images/", image_id), ".jpg")
        ),
        "file_name": pa.array(np.char.add(np.char.add("images/", image_id), ".jpg")),
        "width": pa.array(w.astype(np.int32)),
        "height": pa.array(h.astype(np.int32)),
        "mask_box_iou": pa.array(rng.uniform(0.4, 1.0, n_objects).astype(np.float32)),
        "depth_median": pa.array(depth),
        "depth_reliable": pa.array(rng.random(n_objects) < 0.95),
        "depth_kind": pa.array(np.full(n_objects, "metric")),
        "facing": pa.array(facing, type=pa.string()),
        "facing_confidence": pa.array(
            np.where(is_person, rng.uniform(0.3, 1.0, n_objects), 0).astype(np.float32)
        ),
    }
    t = pa.table(cols)
    return schemas.conform(t, schemas.SCENE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=250_000)
    ap.add_argument("--shard-images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
    except (AttributeError, OSError):
        pass
    t0 = time.perf_counter()
    scene = synthetic_scene(args.objects, args.images, args.seed)
    print(
        f"scene: {scene.num_rows:,} objects over {args.images:,} images built in {time.perf_counter() - t0:.1f} s"
    )
    shard = scene.column("shard").to_numpy(zero_copy_only=False)
    bounds = np.r_[0, np.flatnonzero(shard[1:] != shard[:-1]) + 1, len(shard)]
    settings = QASettings()
    rows: dict[str, int] = {}
    nbytes = 0
    t_gen = t_pq = 0.0
    for a, b in itertools.pairwise(bounds):
        part = scene.slice(a, b - a)
        t1 = time.perf_counter()
        tables = generate_tasks(part, settings)
        t2 = time.perf_counter()
        for task, tab in tables.items():
            buf = io.BytesIO()
            pq.write_table(tab, buf, compression=PARQUET_COMPRESSION)
            nbytes += buf.tell()
            rows[task] = rows.get(task, 0) + tab.num_rows
        t3 = time.perf_counter()
        t_gen += t2 - t1
        t_pq += t3 - t2
    total = sum(rows.values())
    print(f"machine: {machine()} (pinned to one core)")
    print(f"shards: {len(bounds) - 1} of {args.shard_images} images")
    for task, n in rows.items():
        print(f"  {task:12s} {n:>10,} pairs")
    print(f"total: {total:,} QA pairs; generation {t_gen:.1f} s, Parquet {t_pq:.1f} s")
    print(
        f"throughput: {total / (t_gen + t_pq):,.0f} pairs/s (generation + Parquet), {total / t_gen:,.0f} pairs/s (generation only)"
    )
    print(
        f"Parquet: {nbytes:,} bytes, {nbytes / max(total, 1):.1f} bytes per QA pair (zstd, one file per task x shard)"
    )


if __name__ == "__main__":
    main()
