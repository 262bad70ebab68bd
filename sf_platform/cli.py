"""``sf-platform``: run the pipeline through Dagster, make the demo, export and inspect releases.

Every pipeline command goes through the Dagster instance in ``$DAGSTER_HOME`` (default
``./.dagster_home``) and the same definitions the UI loads, so ``dagster dev`` with the same
``DAGSTER_HOME`` and ``SF_PLATFORM_CONFIG`` shows the runs, partitions and lineage.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from sf_platform.config import ConfigError, load_config
from sf_platform.defs.resources import CONFIG_ENV

REPO_INSTANCE_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def _prepare_instance(dagster_home: str | None) -> Path:
    home = Path(dagster_home or os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_INSTANCE_YAML.exists():
        shutil.copy(REPO_INSTANCE_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _load(config_path: str):
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _check_models(cfg) -> None:
    """Fail before any shard runs when a model the sources need cannot be loaded."""
    from sf_platform.models.loading import check_loadable

    problems = check_loadable(cfg)
    if problems:
        raise click.ClickException("models the configured sources need are not available:\n" + "\n".join(problems))


@click.group()
def main() -> None:
    """sf_platform: spatial-reasoning QA datasets on Dagster."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dagster-home", default=None, help="Dagster instance folder (default $DAGSTER_HOME or ./.dagster_home).")
@click.option("--release", "release_version", default=None, help="Also publish a release with this version.")
@click.option("--allow-tiny", is_flag=True, help="Let a release contain tiny-model (test) outputs.")
@click.option("--allow-shrink", is_flag=True, help="Publish even if a task shrank against the previous "
              "release or most images were quarantined.")
@click.option("--force", is_flag=True, help="Re-run shards even when their content did not change.")
@click.option("--source", "only_sources", multiple=True, help="Only these sources (repeatable).")
@click.option("--workers", default=1, show_default=True, help="Shards run in parallel, one process each.")
def run(config_path, dagster_home, release_version, allow_tiny, allow_shrink, force, only_sources, workers):
    """Index every source, register its shards as partitions and materialize them through Dagster."""
    from sf_platform.runner import run_pipeline

    cfg = _load(config_path)
    _check_models(cfg)
    home = _prepare_instance(dagster_home)
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    result = run_pipeline(
        str(Path(config_path).resolve()), cfg, home, release_version=release_version,
        allow_tiny=allow_tiny, force=force, only_sources=list(only_sources) or None, workers=workers,
        echo=click.echo, allow_shrink=allow_shrink,
    )
    _fail_with_cause(result)


def _fail_with_cause(result) -> None:
    """Exit non-zero when anything failed, the last line naming the first failure's cause."""
    if result.ok:
        return
    first = result.failed[0]
    raise click.ClickException(
        f"{len(result.failed)} failed ({', '.join(result.failed[:5])}{', ...' if len(result.failed) > 5 else ''}); "
        f"full event log: {result.log_path}\n{first}: {result.causes.get(first, 'see the event log')}"
    )


@main.command()
@click.option("--dir", "demo_dir", default="demo", show_default=True, help="Where the demo writes everything.")
@click.option("--images", default=48, show_default=True, help="Synthetic scenes to render.")
@click.option("--shard-size", default=12, show_default=True)
@click.option("--workers", default=2, show_default=True, help="Shards run in parallel, one process each.")
def demo(demo_dir, images, shard_size, workers):
    """Render a synthetic sample source and run every asset on it (tiny models, offline)."""
    from sf_platform.demo import write_demo_config
    from sf_platform.runner import run_pipeline

    root = Path(demo_dir).resolve()
    config_path = write_demo_config(root, images, shard_size)
    # The demo's own sandbox: re-running it republishes its release instead of refusing.
    shutil.rmtree(root / "store" / "release" / "demo", ignore_errors=True)
    home = _prepare_instance(str(root / "dagster_home"))
    os.environ[CONFIG_ENV] = str(config_path)
    cfg = _load(str(config_path))
    result = run_pipeline(str(config_path), cfg, home, release_version="demo", allow_tiny=True,
                          workers=workers, echo=click.echo)
    store_root = cfg.storage
    click.echo("")
    click.echo(f"Outputs:        {store_root}/  (assets/, quarantine/, release/demo/)")
    click.echo(f"Release card:   {store_root}/release/demo/README.md")
    click.echo(f"Quality report: {store_root}/release/demo/quality/index.html")
    click.echo("Open the Dagster UI on these runs:")
    click.echo(f"  DAGSTER_HOME={home} {CONFIG_ENV}={config_path} \\")
    click.echo("    .venv/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml")
    _fail_with_cause(result)


def _store(config_path: str | None):
    from sf_platform.storage.object_store import ObjectStore

    if config_path:
        cfg = _load(config_path)
        return ObjectStore(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region), cfg
    return ObjectStore(root="file://" + str(Path("sf_store").resolve())), None


@main.command("export")
@click.option("--release", "version", required=True)
@click.option("--format", "fmt", required=True, type=click.Choice(["qwen", "internvl", "llava"]))
@click.option("--images-root", default="", help="Folder holding one sub-folder per source; prefixes every "
              "image path (and is InternVL's meta root).")
@click.option("--box-format", default="qwen3", show_default=True, type=click.Choice(["qwen3", "qwen25"]),
              help="qwen only: [0,1000] boxes (Qwen3-VL) or absolute pixels (Qwen2.5-VL).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Where exports/<format>/ is written (default ./sf_exports/<release>).")
@click.option("--part-max-bytes", default=None, type=int, help="Cut files into parts above this size.")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
def export_cmd(version, fmt, images_root, box_format, out_dir, part_max_bytes, config_path):
    """Export a release's train split for one trainer, with image paths under --images-root
    (the published release is not changed)."""
    from sf_platform.core.release import ReleaseError, export_release
    from sf_platform.storage.object_store import ObjectStore

    store, cfg = _store(config_path)
    out = ObjectStore(root="file://" + str(Path(out_dir or Path("sf_exports") / version).resolve()))
    part_max = part_max_bytes or (cfg.release.export_part_max_bytes if cfg else None)
    try:
        keys = export_release(store, version, fmt, out, images_root, box_format, part_max)
    except ReleaseError as exc:
        raise click.ClickException(str(exc)) from None
    for key in keys:
        click.echo(out.uri(key))


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def diff(old, new, config_path, as_json):
    """QA pairs added, removed and changed from release OLD to NEW, per task and source."""
    from sf_platform.core.release import ReleaseError, read_manifest, release_prefix
    from sf_platform.core.release_diff import diff_index, diff_markdown, release_index

    store, _ = _store(config_path)
    try:
        a, b = read_manifest(store, old), read_manifest(store, new)
    except ReleaseError as exc:
        raise click.ClickException(str(exc)) from None
    result = diff_index(release_index(store, release_prefix(old), a["files"]),
                        release_index(store, release_prefix(new), b["files"]))
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else diff_markdown(result, old, new))


@main.command()
@click.argument("version")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
def stats(version, config_path):
    """Print counts and balance figures of a release."""
    from sf_platform.core.release import release_stats

    store, _ = _store(config_path)
    try:
        figures = release_stats(store, version)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(figures, indent=2, sort_keys=True))


@main.command()
@click.argument("version", required=False)
@click.option("--partition", default=None, help="Report on one partition (<source>/<shard>) instead of a release.")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
def report(version, partition, config_path):
    """Regenerate the data-quality report of a release (or of one partition)."""
    from sf_platform.core.qa.settings import QASettings
    from sf_platform.core.release_inputs import collect_funnel, qa_keys_by_task
    from sf_platform.quality.release_report import write_partition_report, write_release_report

    if bool(version) == bool(partition):
        raise click.UsageError("give a release VERSION or --partition <source>/<shard>")
    store, cfg = _store(config_path)
    settings = cfg.qa if cfg else QASettings()
    s3 = cfg.s3 if cfg else None
    keys, funnel = qa_keys_by_task(store), collect_funnel(store, partition)
    try:
        rep = (write_partition_report(store, partition, keys, funnel, settings, s3) if partition
               else write_release_report(store, version, keys, funnel, settings, s3))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(store.uri(rep.index_key))
    click.echo(rep.summary_markdown)


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
def validate(path, config_path):
    """Run the expectation suites over a Parquet QA table (or a folder of them)."""
    import pyarrow.dataset as ds

    from sf_platform.core.qa.settings import QASettings
    from sf_platform.quality.suites import validate_qa

    cfg = _load(config_path) if config_path else None
    table = ds.dataset(path, format="parquet").to_table()
    rep = validate_qa(table, cfg.qa if cfg else QASettings())
    click.echo(rep.summary_markdown())
    sys.exit(0 if rep.passed else 1)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "only_sources", multiple=True, help="Sources to evaluate (default: all with given depth).")
@click.option("--max-images", default=200, show_default=True, help="Images per source (its first shards).")
@click.option("--no-pose", is_flag=True, help="Do not run the pose model (use the given keypoints).")
@click.option("--name", default="latest", show_default=True, help="Page name under reports/evaluate/.")
def evaluate(config_path, only_sources, max_images, no_pose, name):
    """Share of the configured model's relation facts that a source's given depth/keypoints contradict."""
    from sf_platform.evaluate import EvaluationError, write_evaluation
    from sf_platform.evaluate import evaluate as run_evaluation
    from sf_platform.storage.object_store import store_for

    cfg = _load(config_path)
    store = store_for(cfg)
    try:
        result = run_evaluation(cfg, store, list(only_sources) or None, max_images, with_pose=not no_pose)
    except EvaluationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.markdown)
    click.echo("")
    click.echo(store.uri(write_evaluation(store, result, name)))


if __name__ == "__main__":
    main()
