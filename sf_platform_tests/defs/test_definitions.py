"""The code location as Dagster sees it: validation, GPU tags, code versions, blocking checks,
and write-audit-publish with a deliberately broken template (file:// and S3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import yaml

from sf_platform.core.qa.generate import TASK_CODE_VERSIONS
from sf_platform.core.schemas import TASKS
from sf_platform.definitions import build_definitions
from sf_platform.storage.object_store import ObjectStore

REPO = Path(__file__).resolve().parents[2]
GPU_ASSETS = ("detections", "masks", "depth", "poses")


def test_dagster_definitions_validate_passes(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    env.pop("SF_PLATFORM_CONFIG", None)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_gpu_assets_are_pooled_and_tagged():
    graph = build_definitions(None).resolve_asset_graph()
    for name in GPU_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.pools == {"gpu"}, name
        tags = dict(node.assets_def.op.tags)
        k8s = json.loads(tags["dagster-k8s/config"]) if isinstance(tags["dagster-k8s/config"], str) \
            else tags["dagster-k8s/config"]
        assert k8s["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not graph.get(dg.AssetKey("scene")).pools


def test_each_task_has_its_own_code_version_and_blocking_checks():
    graph = build_definitions(None).resolve_asset_graph()
    for task in TASKS:
        node = graph.get(dg.AssetKey(f"qa_{task}"))
        assert node.code_version.startswith(TASK_CODE_VERSIONS[task] + "+")
        specs = list(node.assets_def.check_specs)
        assert {s.name for s in specs} == {"boxes", "answers", "balance", "identity", "volume"}
        assert all(s.blocking for s in specs)


def _definitions_for(store: ObjectStore, tmp_path: Path):
    cfg = {"storage": store.root, "sources": [{"name": "syn", "format": "synthetic",
           "images": str(tmp_path / "syn"), "num_images": 8, "shard_size": 8, "seed": 4}],
           "models": {"profile": "real", "device": "cpu", "masks": {"backend": "box"}}}
    if store.is_s3:
        cfg["s3"] = {"endpoint_url": store.endpoint_url}
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return build_definitions(str(path))


def test_broken_template_is_stopped_before_publish(store: ObjectStore, tmp_path, monkeypatch):
    defs = _definitions_for(store, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("sources", ["syn"])
    instance.add_dynamic_partitions("shards", ["syn/00000"])
    assert defs.resolve_job_def("index_sources").execute_in_process(
        partition_key="syn", instance=instance).success
    assert defs.resolve_job_def("process_shard").execute_in_process(
        partition_key="syn/00000", instance=instance).success
    key = "assets/qa_grounding/syn/00000.parquet"
    published = store.read_bytes(key)

    # A template change that writes every grounding box one unit too far right.
    import sf_platform.defs.qa.assets as qa_assets

    real = qa_assets.generate_task

    def broken(task, scene, settings):
        table = real(task, scene, settings)
        if task != "grounding":
            return table
        answers = []
        for a in table.column("answer").to_pylist():
            doc = json.loads(a)
            for d in doc if isinstance(doc, list) else [doc]:
                d["bbox_2d"] = [d["bbox_2d"][0] + 1, *d["bbox_2d"][1:]]
            answers.append(json.dumps(doc))
        return table.set_column(table.schema.get_field_index("answer"), "answer", pa.array(answers))

    monkeypatch.setattr(qa_assets, "generate_task", broken)
    job = defs.resolve_job_def("process_shard")
    res = job.execute_in_process(partition_key="syn/00000", instance=instance, raise_on_error=False,
                                 asset_selection=[dg.AssetKey("qa_grounding")])
    assert not res.success
    assert store.read_bytes(key) == published  # nothing at the final key changed
    evaluations = [e.asset_check_evaluation_data for e in res.all_events
                   if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    answers = [e for e in evaluations if e.check_name == "answers"]
    assert answers and not answers[0].passed
    failed = answers[0].metadata["failed_expectations"].value
    assert failed["syn/00000: answers.grounding_matches_box"]["unexpected_count"] > 0
    assert failed["syn/00000: answers.grounding_matches_box"]["examples"]
    assert answers[0].metadata["failed_shards"].value == ["syn/00000"]
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert "quality gate failed" in failure.step_failure_data.error.message

    assert not [e for e in res.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]

    # The release still publishes only checked tables: the last version that passed its checks.
    rel = defs.resolve_job_def("publish_release").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"release": {"config": {"version": "r1", "allow_tiny": True}}}})
    assert rel.success
    released = pa.concat_tables([store.read_table(k) for k in store.list("release/r1/data/grounding", ".parquet")])
    cols = ["qa_id", "question", "answer"]
    assert released.select(cols).sort_by("qa_id").equals(store.read_table(key).select(cols).sort_by("qa_id"))
