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


@click.group()
def main() -> None:
    """sf_platform: spatial-reasoning QA datasets on Dagster."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dagster-home", default=None, help="Dagster instance folder (default $DAGSTER_HOME or ./.dagster_home).")
@click.option("--release", "release_version", default=None, help="Also publish a release with this version.")
@click.option("--allow-tiny", is_flag=True, help="Let a release contain tiny-model (test) outputs.")
@click.option("--force", is_flag=True, help="Re-run shards even when their content did not change.")
@click.option("--source", "only_sources", multiple=True, help="Only these sources (repeatable).")
@click.option("--workers", default=1, show_default=True, help="Shards run in parallel, one process each.")
def run(config_path, dagster_home, release_version, allow_tiny, force, only_sources, workers):
    """Index every source, register its shards as partitions and materialize them through Dagster."""
    from sf_platform.runner import run_pipeline

    cfg = _load(config_path)
    _prepare_instance(dagster_home)
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    result = run_pipeline(
        str(Path(config_path).resolve()), cfg, release_version=release_version,
        allow_tiny=allow_tiny, force=force, only_sources=list(only_sources) or None, workers=workers,
        echo=click.echo,
    )
    if not result.ok:
        raise click.ClickException(f"{len(result.failed)} run(s) failed: {', '.join(result.failed)}")


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
    result = run_pipeline(str(config_path), cfg, release_version="demo", allow_tiny=True, workers=workers,
                          echo=click.echo)
    store_root = cfg.storage
    click.echo("")
    click.echo(f"Outputs:        {store_root}/  (assets/, quarantine/, release/demo/)")
    click.echo(f"Release card:   {store_root}/release/demo/README.md")
    click.echo(f"Quality report: {store_root}/release/demo/quality/index.html")
    click.echo("Open the Dagster UI on these runs:")
    click.echo(f"  DAGSTER_HOME={home} {CONFIG_ENV}={config_path} \\")
    click.echo("    .venv/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml")
    if not result.ok:
        raise click.ClickException(f"{len(result.failed)} run(s) failed: {', '.join(result.failed)}")


def _store(config_path: str | None):
    from sf_platform.storage.object_store import ObjectStore

    if config_path:
        cfg = _load(config_path)
        return ObjectStore(root=cfg.storage, endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region), cfg
    return ObjectStore(root="file://" + str(Path("sf_store").resolve())), None


@main.command("export")
@click.option("--release", "version", required=True)
@click.option("--format", "fmt", required=True, type=click.Choice(["qwen", "internvl", "llava"]))
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
def export_cmd(version, fmt, config_path):
    """Re-export an existing release in one training format."""
    from sf_platform.core.release import export_release

    store, _ = _store(config_path)
    try:  # an unpublished (staged or interrupted) version: one line saying so, no traceback
        keys = export_release(store, version, fmt)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for key in keys:
        click.echo(store.uri(key))


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
               else write_release_report(store, version, funnel, settings, s3))
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


if __name__ == "__main__":
    main()
