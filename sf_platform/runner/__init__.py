"""``sf-platform run``: index, plan with Dagster's own staleness, run shards, publish.

The runner makes no decision of its own about what is out of date.  It asks the same planner
as the regeneration sensor (``sf_platform.defs.regeneration``), executes the same runs it would
request (the code location's jobs, with the same asset selections and partition ranges) in
``workers`` processes against the instance in ``$DAGSTER_HOME``, and shows one progress line.
So whatever the CLI ran, the UI shows, and what the CLI would run is what the sensor runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sf_platform.runner.instance import open_instance, recover_dead_runs
from sf_platform.runner.launch import RunOutcome, execute, redirect_output
from sf_platform.runner.progress import Progress
from sf_platform.storage.layout import split_shard_key


@dataclass
class RunResult:
    shards_run: list[str] = field(default_factory=list)
    shards_skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    release: str | None = None
    log_path: str | None = None
    causes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _shard_images(summaries: dict, key: str) -> int:
    """How many images a shard holds (shards are fixed slices; the last one is shorter)."""
    source, shard = split_shard_key(key)
    s = summaries.get(source)
    if s is None:
        return 0
    return max(0, min(s.shard_size, s.num_images - int(shard) * s.shard_size))


def _pool(workers: int, log_path: Path) -> cf.ProcessPoolExecutor:
    # Spawned, not forked: no CUDA context or open database handle is inherited.
    return cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn"),
                                  initializer=redirect_output, initargs=(str(log_path),))


def _collect(futures: dict, progress: Progress | None, weights: dict) -> list[RunOutcome]:
    """Wait for ``{future: (label, shards)}``; advance the progress display as each run ends."""
    outcomes = []
    pending = set(futures)
    while pending:
        done, pending = cf.wait(pending, timeout=2.0, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            label, shards = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed for memory
                outcome = RunOutcome(label, False, None, f"{type(exc).__name__}: {exc}")
            outcomes.append(outcome)
            if progress is not None:
                progress.advance(shards, sum(weights.get(s, 0) for s in shards), outcome.ok, outcome.cause)
        if progress is not None:
            progress.show()
    return outcomes


def run_pipeline(
    config_path: str,
    cfg,
    home: Path,
    release_version: str | None = None,
    allow_tiny: bool = False,
    force: bool = False,
    only_sources: list[str] | None = None,
    workers: int = 1,
    echo: Callable[[str], None] = print,
    allow_shrink: bool = False,
    shards_per_run: int | None = None,
) -> RunResult:
    """Index, plan, run and (optionally) publish; ``shards_per_run`` caps the shards of one
    run (default: spread over the workers, at most ``MAX_SHARDS_PER_RUN``; 0: index only)."""
    from sf_platform.core.sources.index import load_index_summary
    from sf_platform.definitions import build_definitions
    from sf_platform.defs.regeneration import plan, shard_runs
    from sf_platform.defs.sensors import shard_job_assets, sources_to_index
    from sf_platform.defs.shard_runs import MAX_SHARDS_PER_RUN
    from sf_platform.storage.object_store import store_for

    instance = open_instance(home)
    for run_id in recover_dead_runs(instance):
        echo(f"[run] marked run {run_id} failed: its process is gone (its pool slots are freed)")
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    result = RunResult(log_path=str(log_path))
    echo(f"[run] Dagster event log: {log_path}")
    store = store_for(cfg)
    selected = [s.name for s in cfg.sources if not only_sources or s.name in only_sources]
    instance.add_dynamic_partitions("sources", selected)
    stale_sources = sources_to_index(cfg, store)
    to_index = [n for n in selected if force or n in stale_sources]

    with _pool(workers, log_path) as pool:
        if to_index:
            echo(f"[index] {', '.join(to_index)}")
        futures = {pool.submit(execute, f"index:{n}", "index_sources", {"dagster/partition": n}):
                   (f"index:{n}", []) for n in to_index}
        for outcome in _collect(futures, None, {}):
            if not outcome.ok:
                result.failed.append(outcome.label)
                result.causes[outcome.label] = outcome.cause
                echo(f"[index] FAILED {outcome.label}: {outcome.cause}")
        ok_sources = [n for n in selected if f"index:{n}" not in result.failed]
        summaries = {n: load_index_summary(store, n) for n in ok_sources}
        for n, s in summaries.items():
            if s is not None:
                echo(f"[index] {n}: {s.num_images} images, {s.num_objects} objects, {len(s.shards)} shards")

        defs = build_definitions(config_path)
        graph = defs.resolve_asset_graph()
        def indexed(key: str) -> bool:
            source, shard = split_shard_key(key)
            return summaries.get(source) is not None and shard in summaries[source].shards

        keys = [k for k in instance.get_dynamic_partitions("shards") if indexed(k)]
        assets = shard_job_assets(defs.resolve_job_def("process_shard"))
        decided = plan(instance, graph, keys, assets)
        if force:
            decided = {k: frozenset(a.to_user_string() for a in assets) for k in keys}
        result.shards_skipped = [k for k in keys if not decided[k]]
        if shards_per_run == 0:
            return result
        todo = [k for k in keys if decided[k]]
        per_run = shards_per_run or max(1, min(MAX_SHARDS_PER_RUN, -(-len(todo) // max(1, workers))))
        runs = shard_runs(decided, keys, per_run)
        echo(f"[plan] {len(result.shards_skipped)} shard(s) up to date, {len(todo)} to run "
             f"in {len(runs)} run(s)")
        everything = frozenset(a.to_user_string() for a in assets)
        for selection, n in sorted(Counter(decided[k] for k in todo).items(), key=lambda kv: sorted(kv[0])):
            what = "everything" if selection == everything else ", ".join(sorted(selection))
            echo(f"[plan] {n} shard(s): {what}")
        weights = {k: _shard_images(summaries, k) for k in todo}
        progress = Progress(total_shards=len(todo), total_images=sum(weights.values()), echo=echo)
        runs_by_label = {f"shards:{r.keys[0]}..{r.keys[-1]}": list(r.keys) for r in runs}
        futures = {pool.submit(execute, label, "process_shard",
                               {**r.tags, **({"dagster/partition": r.partition_key} if r.partition_key else {})},
                               list(r.assets)): (label, list(r.keys))
                   for r, label in zip(runs, runs_by_label)}
        outcomes = _collect(futures, progress, weights) if futures else []
        progress.finish()
        for outcome in outcomes:
            shards = runs_by_label[outcome.label]
            (result.shards_run if outcome.ok else result.failed).extend(shards)
            if not outcome.ok:
                result.causes.update({s: outcome.cause for s in shards})

        if release_version and not result.failed:
            echo(f"[release] {release_version}")
            config = {"ops": {"release": {"config": {"version": release_version, "allow_tiny": allow_tiny,
                                                     "allow_shrink": allow_shrink}}}}
            fut = pool.submit(execute, f"release:{release_version}", "publish_release", {}, None, config)
            (outcome,) = _collect({fut: (f"release:{release_version}", [])}, None, {})
            if outcome.ok:
                result.release = release_version
            else:
                result.failed.append(outcome.label)
                result.causes[outcome.label] = outcome.cause
                echo(f"[release] FAILED: {outcome.cause}")
    return result

