"""GPU op tags become a real Kubernetes Job (built by dagster-k8s, no cluster needed)."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from sf_platform.config import K8sConfig
from sf_platform.defs.gpu_tags import K8S_CONFIG_TAG, gpu_op_tags


def _job_pod_spec(op_tags) -> dict:
    """What dagster-k8s' step launcher does with a step's tags: the Job's pod spec as a dict."""
    job_config = DagsterK8sJobConfig(job_image="sf-platform:test", dagster_home="/opt/dagster/dagster_home",
                                     instance_config_map="dagster-instance")
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], "dagster-step-test",
                                    user_defined_k8s_config=get_user_defined_k8s_config(op_tags))
    return job.to_dict()["spec"]["template"]["spec"]


def test_gpu_tags_reach_the_kubernetes_job():
    k8s = K8sConfig(node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
                    tolerations=[{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}])

    @dg.asset(op_tags=gpu_op_tags(k8s), pool="gpu")
    def gpu_asset() -> None: ...

    spec = _job_pod_spec(gpu_asset.op.tags)  # tags as Dagster stores them (JSON strings)
    container = spec["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert container["image"] == "sf-platform:test"
    assert spec["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    tol = spec["tolerations"][0]
    assert (tol["key"], tol["operator"], tol["value"], tol["effect"]) == ("nvidia.com/gpu", "Equal", "present", "NoSchedule")


def test_default_config_and_gpu_count():
    tags = gpu_op_tags(K8sConfig(), gpus=2)[K8S_CONFIG_TAG]
    assert tags["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert tags["pod_spec_config"]["node_selector"] == {"sf-platform/pool": "gpu"}
    assert tags["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    with pytest.raises(ValueError, match="at least one GPU"):
        gpu_op_tags(K8sConfig(), gpus=0)



@pytest.mark.parametrize("name", ["detections", "masks", "depth", "poses"])
def test_each_gpu_asset_of_the_code_location_builds_a_gpu_job(tmp_path, name):
    """The real assets, with node selector and tolerations from the config file."""
    import yaml

    from sf_platform.definitions import build_definitions

    cfg = tmp_path / "sources.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"k8s": {
        "node_selector": {"pool": "a100"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}}))
    node = build_definitions(str(cfg)).resolve_asset_graph().get(dg.AssetKey(name))
    spec = _job_pod_spec(node.assets_def.op.tags)
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert spec["node_selector"] == {"pool": "a100"}
    assert spec["tolerations"][0]["key"] == "dedicated"
