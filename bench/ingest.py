"""Objects365 ingest benchmark: streaming parse throughput and peak memory.

Wall-clock rates depend on what else runs on the machine; the CPU time of the pinned child is
printed too (boxes per CPU-second is the one-core rate without that noise).

Generates an Objects365-format JSON (``zhiyuan_objv2_*.json`` layout: images, annotations,
categories; Python ``json.dump`` separators, like the official files) with ``--boxes`` boxes in a
temporary folder, then measures, each in a fresh child process pinned to one core (Arrow
limited to one thread) so that peak RSS (``resource.getrusage``) belongs to that step alone:

- ``parse``: :func:`parse_coco` + :func:`annotations_to_objects` -- the JSON turned into
  objects tables batch by batch (what the reader does before spilling);
- ``index``: the whole :func:`build_index` into a local store (parse, spill, bucket by shard,
  write Parquet with one row group per shard);
- with ``--baselines``: ``json.load`` of the whole file, and ``ijson`` (its C backend) iterating
  the annotations.

Run: ``.venv/bin/python bench/ingest.py [--boxes 1000000] [--boxes-per-image 15] [--baselines]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe


def machine() -> str:
    return describe()


def generate(path: Path, boxes: int, per_image: int, seed: int = 0) -> None:
    """Write the benchmark file in pieces (the generator itself stays small in memory)."""
    rng = random.Random(seed)
    n_images = max(1, boxes // per_image)
    with open(path, "w") as f:
        f.write('{"images": [')
        for i in range(n_images):
            if i:
                f.write(", ")
            f.write(
                json.dumps(
                    {
                        "height": 480,
                        "id": i + 1,
                        "license": 5,
                        "width": 640,
                        "file_name": f"images/v2/patch{i // 35000}/objects365_v2_{i + 1:08d}.jpg",
                    }
                )
            )
        f.write('], "annotations": [')
        for a in range(boxes):
            if a:
                f.write(", ")
            w, h = round(rng.uniform(2, 300), 4), round(rng.uniform(2, 300), 4)
            f.write(
                json.dumps(
                    {
                        "id": a + 1,
                        "iscrowd": 0,
                        "isfake": 0,
                        "area": round(w * h, 4),
                        "isreflected": 0,
                        "bbox": [
                            round(rng.uniform(0, 600), 4),
                            round(rng.uniform(0, 450), 4),
                            w,
                            h,
                        ],
                        "image_id": a // per_image + 1,
                        "category_id": rng.randint(1, 365),
                    }
                )
            )
        f.write('], "categories": [')
        f.write(", ".join(json.dumps({"name": f"category {c}", "id": c}) for c in range(1, 366)))
        f.write("]}")


def _one_core() -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def child(step: str, path: str) -> dict:
    _one_core()
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    boxes = 0
    if step == "parse":
        from sf_platform.core.sources.objects365 import annotations_to_objects, parse_coco

        with open(path, "rb") as f:
            for section, table in parse_coco(f):
                if section == "annotations":
                    objects = annotations_to_objects(table, boxes)
                    boxes += objects.num_rows
    elif step == "index":
        from sf_platform.config import S3Config, SourceConfig
        from sf_platform.core.sources.index import build_index
        from sf_platform.storage.object_store import ObjectStore

        with tempfile.TemporaryDirectory() as tmp:
            src = SourceConfig(name="bench", format="objects365", images=tmp, annotations=path)
            summary = build_index(src, ObjectStore(root="file://" + tmp + "/store"), S3Config())
            boxes = summary.num_objects + summary.num_quarantined
    elif step == "json.load":
        with open(path, "rb") as f:
            boxes = len(json.load(f)["annotations"])
    elif step == "ijson":
        import ijson

        with open(path, "rb") as f:
            for _ in ijson.items(f, "annotations.item"):
                boxes += 1
    else:
        raise SystemExit(f"unknown step {step}")
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "step": step,
        "boxes": boxes,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(step: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, "--path", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--boxes", type=int, default=1_000_000)
    ap.add_argument("--boxes-per-image", type=int, default=15)
    ap.add_argument("--baselines", action="store_true", help="also time json.load and ijson")
    ap.add_argument("--steps", default="parse,index")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path)))
        return
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zhiyuan_objv2_bench.json"
        t0 = time.perf_counter()
        generate(path, args.boxes, args.boxes_per_image)
        size = path.stat().st_size
        print(
            f"generated {args.boxes:,} boxes, {size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s"
        )
        steps = args.steps.split(",") + (["json.load", "ijson"] if args.baselines else [])
        for step in steps:
            r = run_child(step, path)
            print(
                f"{step:>10}: {r['boxes']:>10,} boxes, wall {r['seconds']:6.2f} s "
                f"({r['boxes'] / r['seconds']:>9,.0f} boxes/s), CPU {r['cpu_seconds']:6.2f} s "
                f"({r['boxes'] / r['cpu_seconds']:>9,.0f} boxes per CPU-second), "
                f"peak RSS {r['peak_rss_mb']:,.0f} MB"
            )


if __name__ == "__main__":
    main()
