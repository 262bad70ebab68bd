"""The nightly release schedule: a new, distinct version when QA changed, a skip otherwise."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import yaml

from sf_platform.core.release_versions import next_release_version
from sf_platform.definitions import build_definitions
from sf_platform.defs.resources import PlatformResource


def test_versions_are_dated_and_never_reused():
    day = dt.datetime(2026, 12, 1, 3, 0)
    taken = {"v2026.12.01", "v2026.12.01.2"}
    assert next_release_version("v%Y.%m.%d", day, taken.__contains__) == "v2026.12.01.3"
    assert next_release_version("v%Y.%m.%d", day + dt.timedelta(days=1), taken.__contains__) == "v2026.12.02"


def _tick(defs, instance, path, when):
    schedule = defs.resolve_schedule_def("nightly_release")
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                    resources={"platform": PlatformResource(config_path=str(path))})
    return schedule.evaluate_tick(ctx)


def _publish(defs, instance, request):
    res = defs.resolve_job_def("publish_release").execute_in_process(
        instance=instance, run_config=request.run_config)
    assert res.success


def test_two_quiet_ticks_give_one_release_and_a_change_gives_a_second(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({
        "storage": str(tmp_path / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"),
                     "num_images": 8, "shard_size": 8, "seed": 2}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}},
        "release": {"schedule_cron": "0 4 * * *", "allow_tiny": True}}))
    defs = build_definitions(str(path))
    assert defs.resolve_schedule_def("nightly_release").cron_schedule == "0 4 * * *"
    with dg.instance_for_test() as instance:  # schedules need an instance with a ref
        _ticks(defs, instance, path, tmp_path)


def _ticks(defs, instance, path, tmp_path):
    instance.add_dynamic_partitions("sources", ["syn"])
    assert defs.resolve_job_def("index_sources").execute_in_process(partition_key="syn", instance=instance).success
    shard = defs.resolve_job_def("process_shard")
    assert shard.execute_in_process(partition_key="syn/00000", instance=instance).success

    night = dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC)
    first = _tick(defs, instance, path, night)
    (request,) = first.run_requests
    assert request.run_config["ops"]["release"]["config"]["version"] == "v2026.12.01"
    _publish(defs, instance, request)

    quiet = _tick(defs, instance, path, night + dt.timedelta(days=1))
    assert not quiet.run_requests and "no QA partition changed" in quiet.skip_message

    # QA changes (a shard re-runs its counting table): the next tick cuts a new version,
    # distinct from the first even on the same day.
    assert shard.execute_in_process(partition_key="syn/00000", instance=instance,
                                    asset_selection=[dg.AssetKey("qa_counting")]).success
    second = _tick(defs, instance, path, night)
    (request2,) = second.run_requests
    assert request2.run_config["ops"]["release"]["config"]["version"] == "v2026.12.01.2"
    _publish(defs, instance, request2)
    assert (tmp_path / "store" / "release" / "v2026.12.01.2" / "manifest.json").exists()
