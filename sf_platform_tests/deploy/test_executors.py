"""``execution:`` in config picks the executor of every job in the code location."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.config import ConfigError, parse_config
from sf_platform.definitions import build_definitions
from sf_platform.defs.executors import celery_broker_url, celery_executor_config, executor_for
from sf_platform.defs.gpu_tags import CELERY_QUEUE_TAG
from sf_platform_tests.deploy.shard_source import GPU_STEPS, make_source, write_config


@pytest.mark.parametrize(("kind", "name"), [
    ("multiprocess", "multi_or_in_process_executor"), ("in_process", "in_process"),
    ("celery", "celery"), ("k8s", "k8s")])
def test_each_executor_kind(kind, name):
    assert executor_for(parse_config({"execution": {"executor": kind}}).execution).name == name


def test_default_runs_steps_in_the_run_process():
    assert executor_for(parse_config({}).execution).name == "in_process"


def test_broker_from_the_environment_never_in_the_job(monkeypatch):
    celery = parse_config({"execution": {"executor": "celery", "celery": {
        "broker_env": "SF_TEST_BROKER"}}}).execution.celery
    assert celery_executor_config(celery)["broker"] == {"env": "SF_TEST_BROKER"}
    monkeypatch.delenv("SF_TEST_BROKER", raising=False)
    with pytest.raises(RuntimeError, match="SF_TEST_BROKER, which is not set"):
        celery_broker_url(celery)
    monkeypatch.setenv("SF_TEST_BROKER", "pyamqp://u:secret@broker//")
    assert celery_broker_url(celery) == "pyamqp://u:secret@broker//"


@pytest.mark.parametrize("bad", [{"executor": "dask"}, {"celery": {"gpu_queue": "q", "default_queue": "q"}},
                                 {"celery": {"brokr": "x"}}])
def test_bad_execution_sections_fail_when_loading(bad):
    with pytest.raises(ConfigError, match="execution"):
        parse_config({"execution": bad})


def test_every_job_of_the_location_gets_the_executor_and_gpu_steps_their_queue(tmp_path):
    config = write_config(tmp_path / "sources.yaml", make_source(tmp_path), tmp_path / "store",
                          execution={"executor": "celery", "celery": {"gpu_queue": "gpu-a100"}})
    defs = build_definitions(str(config))
    jobs = [defs.resolve_job_def(n) for n in ("process_shard", "index_sources", "publish_release")]
    # Backfills, automation and the UI's "Materialize" run the implicit asset job.
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    assert {j.executor_def.name for j in jobs} == {"celery"}
    graph = defs.resolve_asset_graph()
    for name in ("images", "scene", "qa_near_far", *GPU_STEPS):
        tags = graph.get(dg.AssetKey(name)).assets_def.op.tags
        assert tags.get(CELERY_QUEUE_TAG) == ("gpu-a100" if name in GPU_STEPS else None), name
