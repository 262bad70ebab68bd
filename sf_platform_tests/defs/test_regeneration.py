"""The one planner, through the instance API: Dagster's own staleness decides what re-runs.

A tiny synthetic source goes through the real jobs in-process; then one thing changes at a
time (a template, the source's content, a model id) and the planner, the regeneration sensor
and the UI's stale status must all agree on exactly what is out of date.
"""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from sf_platform.core.schemas import TASKS
from sf_platform.definitions import build_definitions
from sf_platform.defs.regeneration import ShardRun, plan, shard_runs
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.sensors import regeneration_sensor, shard_job_assets

QA = {f"qa_{t}" for t in TASKS}
EVERYTHING = {"images", "objects", "quarantine", "detections", "masks", "depth", "poses", "scene"} | QA


def _config(tmp_path, num_images=8, **models):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({
        "storage": str(tmp_path / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"),
                     "num_images": num_images, "shard_size": 4, "seed": 3}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}, **models},
    }))
    return path


def _plan(instance, defs):
    keys = instance.get_dynamic_partitions("shards")
    assets = shard_job_assets(defs.resolve_job_def("process_shard"))
    return {k: set(v) for k, v in plan(instance, defs.resolve_asset_graph(), keys, assets).items()}


def _index(instance, defs):
    instance.add_dynamic_partitions("sources", ["syn"])
    assert defs.resolve_job_def("index_sources").execute_in_process(partition_key="syn", instance=instance).success


def _execute(instance, defs, decided):
    for run in shard_runs({k: frozenset(v) for k, v in decided.items()}, instance.get_dynamic_partitions("shards")):
        res = defs.resolve_job_def("process_shard").execute_in_process(
            instance=instance, partition_key=run.partition_key, tags=run.tags,
            asset_selection=[dg.AssetKey(a) for a in run.assets])
        assert res.success


def _sensor(instance, defs, path):
    ctx = dg.build_sensor_context(instance=instance, definitions=defs,
                                  resources={"platform": PlatformResource(config_path=str(path))})
    return regeneration_sensor(ctx)


@pytest.fixture
def built(tmp_path):
    """An instance where the 8-image source has gone through every shard asset once."""
    path = _config(tmp_path)
    defs = build_definitions(str(path))
    instance = dg.DagsterInstance.ephemeral()
    _index(instance, defs)
    assert instance.get_dynamic_partitions("shards") == ["syn/00000", "syn/00001"]
    first = _plan(instance, defs)
    assert first == {"syn/00000": EVERYTHING, "syn/00001": EVERYTHING}  # all missing
    _execute(instance, defs, first)
    assert _plan(instance, defs) == {"syn/00000": set(), "syn/00001": set()}
    return instance, defs, path


def test_a_changed_template_makes_only_its_task_and_the_release_stale(built, monkeypatch):
    from dagster._core.definitions.data_version import StaleStatus

    from sf_platform.core.qa import templates
    from sf_platform.defs.regeneration import _resolver

    instance, _, path = built
    counting = templates.TEMPLATES["counting"]
    edited = (templates.Template(counting[0].id, counting[0].kind, "How many {C} do you see here?"),
              *counting[1:])
    monkeypatch.setitem(templates.TEMPLATES, "counting", edited)
    monkeypatch.setitem(templates.BY_ID, edited[0].id, edited[0])
    defs = build_definitions(str(path))  # the location reloads with the new template

    decided = _plan(instance, defs)
    assert decided == {"syn/00000": {"qa_counting"}, "syn/00001": {"qa_counting"}}
    requests = _sensor(instance, defs, path).run_requests
    assert [sorted(k.to_user_string() for k in r.asset_selection) for r in requests] == [["qa_counting"]]
    assert requests[0].tags["dagster/asset_partition_range_start"] == "syn/00000"
    assert requests[0].tags["dagster/asset_partition_range_end"] == "syn/00001"

    before = {a: len(instance.fetch_materializations(dg.AssetKey(a), limit=100).records) for a in EVERYTHING}
    _execute(instance, defs, decided)
    after = {a: len(instance.fetch_materializations(dg.AssetKey(a), limit=100).records) for a in EVERYTHING}
    assert {a for a in EVERYTHING if after[a] != before[a]} == {"qa_counting"}
    assert _plan(instance, defs) == {"syn/00000": set(), "syn/00001": set()}
    assert _sensor(instance, defs, path).run_requests == []

    # The release (published before the change) is now stale, from qa_counting's new data.
    rel = defs.resolve_job_def("publish_release")
    assert rel.execute_in_process(instance=instance, run_config={"ops": {"release": {"config": {
        "version": "r0", "allow_tiny": True}}}}).success
    monkeypatch.setitem(templates.TEMPLATES, "counting", counting)
    monkeypatch.setitem(templates.BY_ID, counting[0].id, counting[0])
    defs = build_definitions(str(path))
    _execute(instance, defs, _plan(instance, defs))
    status = _resolver(instance, defs.resolve_asset_graph()).get_status(dg.AssetKey("release"))
    assert status == StaleStatus.STALE


def test_a_new_shard_runs_only_its_own_chain(built, tmp_path):
    instance, _, _ = built
    path = _config(tmp_path, num_images=10)  # 8 -> 10 images: shard 00002 is new
    defs = build_definitions(str(path))
    requests = _sensor(instance, defs, path).run_requests
    assert [(r.job_name, r.partition_key) for r in requests] == [("index_sources", "syn")]
    _index(instance, defs)
    assert _plan(instance, defs) == {"syn/00000": set(), "syn/00001": set(), "syn/00002": EVERYTHING}
    shard_requests = _sensor(instance, defs, path).run_requests
    assert [r.partition_key for r in shard_requests] == ["syn/00002"]


def test_a_changed_model_id_reruns_that_op_and_its_downstream_only(built, tmp_path):
    instance, _, _ = built
    defs = build_definitions(str(_config(tmp_path, depth={"model": "tiny/depth-v2-other"})))
    downstream = {"depth", "scene"} | QA
    assert _plan(instance, defs) == {"syn/00000": downstream, "syn/00001": downstream}


def test_shard_runs_group_contiguous_shards_with_one_selection():
    keys = ["a/0", "a/1", "a/2", "a/3", "b/0"]
    decided = {"a/0": frozenset({"x"}), "a/1": frozenset({"x"}), "a/2": frozenset(),
               "a/3": frozenset({"x"}), "b/0": frozenset({"x", "y"})}
    assert shard_runs(decided, keys, max_per_run=16) == [
        ShardRun(("x",), ("a/0", "a/1")), ShardRun(("x",), ("a/3",)), ShardRun(("x", "y"), ("b/0",))]
    assert [r.keys for r in shard_runs({k: frozenset({"x"}) for k in keys}, keys, max_per_run=2)] == [
        ("a/0", "a/1"), ("a/2", "a/3"), ("b/0",)]
