"""Orchestration overhead: how much of a run's wall time is spent outside the asset steps.

Runs N synthetic shards through the whole graph (index, curation, the four model steps with
the tiny models, scene, six QA tables) with ``sf-platform run``'s own code path, once with one
shard per run and once with many shards per run, at each shard size asked for.  Prints:

- wall time of the shard phase;
- time inside the steps (sum of Dagster's step durations: inputs, the asset body, outputs);
- overhead = wall - steps, as a share of wall time (one worker, so steps never overlap);
- fixed cost per shard: from the two shard sizes, wall per shard = fixed + per_image * images.

    python bench/orchestration.py --shards 50 --sizes 40 1000      # the issue's figures
    python bench/orchestration.py --shards 8 --sizes 10 40          # a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml
from machine import describe  # bench/machine.py


def _config(root: Path, scenes: Path, shards: int, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump({
        "storage": str(root / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(scenes),
                     "num_images": shards * size, "shard_size": size, "seed": 1}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}},
    }))
    return path


def _step_seconds(instance, run_ids) -> float:
    import dagster as dg

    total = 0.0
    for run_id in run_ids:
        for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS):
            total += rec.dagster_event.event_specific_data.duration_ms / 1000.0
    return total


def measure(root: Path, scenes: Path, shards: int, size: int, per_run: int) -> dict:
    import dagster as dg

    from sf_platform.config import load_config
    from sf_platform.runner import run_pipeline

    cfg_path = _config(root, scenes, shards, size)
    os.environ["SF_PLATFORM_CONFIG"] = str(cfg_path)
    home = root / "home"
    # Index and render first, so the timed phase is the shard runs only.
    run_pipeline(str(cfg_path), load_config(cfg_path), home, only_sources=["syn"], workers=1,
                 echo=lambda _: None, shards_per_run=0)
    instance = dg.DagsterInstance.get()
    before = {r.run_id for r in instance.get_runs()}
    start = time.perf_counter()
    result = run_pipeline(str(cfg_path), load_config(cfg_path), home, workers=1, echo=lambda _: None,
                          shards_per_run=per_run)
    wall = time.perf_counter() - start
    assert result.ok, result.causes
    runs = [r.run_id for r in instance.get_runs() if r.run_id not in before]
    steps = _step_seconds(instance, runs)
    return {"shards": shards, "size": size, "per_run": per_run, "runs": len(runs), "wall": wall,
            "steps": steps, "overhead": (wall - steps) / wall, "per_shard": wall / shards}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=50)
    ap.add_argument("--sizes", type=int, nargs=2, default=[40, 1000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--many", type=int, default=16, help="shards per run in the 'many' mode")
    args = ap.parse_args()
    print(describe())
    rows = []
    with tempfile.TemporaryDirectory(prefix="sf-bench-orch-") as tmp:
        for size in args.sizes:
            scenes = Path(tmp) / f"scenes-{size}"
            for per_run in (1, args.many):
                rows.append(measure(Path(tmp) / f"s{size}-r{per_run}", scenes, args.shards, size, per_run))
                r = rows[-1]
                print(f"{r['shards']} shards x {r['size']} images, {r['per_run']:>2} shard(s)/run "
                      f"({r['runs']} runs): wall {r['wall']:.1f} s, steps {r['steps']:.1f} s, "
                      f"overhead {100 * r['overhead']:.1f}%, {r['per_shard']:.2f} s/shard", flush=True)
    small, large = args.sizes
    for per_run in (1, args.many):
        a = next(r for r in rows if r["size"] == small and r["per_run"] == per_run)
        b = next(r for r in rows if r["size"] == large and r["per_run"] == per_run)
        per_image = (b["per_shard"] - a["per_shard"]) / (large - small)
        fixed = a["per_shard"] - per_image * small
        print(f"{per_run:>2} shard(s)/run: fixed cost {fixed:.2f} s/shard, {1000 * per_image:.1f} ms/image")


if __name__ == "__main__":
    main()
