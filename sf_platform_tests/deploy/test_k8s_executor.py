"""With ``execution: {executor: k8s}`` every step is its own Kubernetes Job, built by
dagster-k8s' own step handler (``k8s_job_executor``) from the real shard job's steps: the four
model steps ask for a GPU, memory and the GPU node pool, the other steps for none of it."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster._grpc.types import ExecuteStepArgs

from sf_platform.config import K8sConfig
from sf_platform.defs.gpu_tags import CELERY_QUEUE_TAG, K8S_CONFIG_TAG, gpu_op_tags
from sf_platform_tests.deploy.fake_kubernetes import fake_kubernetes
from sf_platform_tests.deploy.shard_source import GPU_STEPS, PARTITION, make_source, write_config

K8S = {"node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"}, "memory": "24Gi",
       "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}


def _recon_job(tmp_path, config):
    """The shard job of a code location built from ``config``, reconstructable by file."""
    module = tmp_path / "location.py"
    module.write_text("from sf_platform.definitions import build_definitions\n"
                      f"defs = build_definitions({str(config)!r})\n")
    return ReconstructableRepository.for_file(str(module), "defs").get_reconstructable_job("process_shard")


def _launch_every_step(recon_job, instance) -> set[str]:
    """Launches every step of the plan through the job's own executor; returns the step keys."""
    job_def = recon_job.get_definition()
    executor_def = job_def.executor_def
    assert executor_def.name == "k8s"
    executor = executor_def.executor_creation_fn(InitExecutorContext(
        job=recon_job, executor_def=executor_def, instance=instance,
        executor_config=_executor_config(executor_def)))
    run = create_run_for_test(instance, job_name=job_def.name, tags={"dagster/partition": PARTITION},
                              job_code_origin=recon_job.get_python_origin())
    plan = create_execution_plan(recon_job, tags=run.tags)
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(job=recon_job, dagster_run=run, instance=instance, execution_plan=plan,
                           raise_on_error=True, retry_mode=RetryMode.DISABLED),
        log_manager=create_context_free_log_manager(instance, run), executor=executor, output_capture=None)
    handler = executor._step_handler  # the executor's own step handler
    for step in plan.steps:
        args = ExecuteStepArgs(recon_job.get_python_origin(), run.run_id, [step.key])
        events = list(handler.launch_step(StepHandlerContext(instance, plan_context, [step], args)))
        assert events and events[0].event_type == dg.DagsterEventType.STEP_WORKER_STARTING
    return {step.key for step in plan.steps}


def _executor_config(executor_def):
    from dagster._config import process_config, resolve_to_config_type

    result = process_config(resolve_to_config_type(executor_def.config_schema.config_type), {})
    assert result.success, result.errors
    return result.value


@pytest.fixture
def k8s_instance(tmp_path):
    with fake_kubernetes(tmp_path) as (kubeconfig, created):
        launcher = {"service_account_name": "dagster", "instance_config_map": "dagster-instance",
                    "dagster_home": "/opt/dagster/dagster_home", "job_image": "sf-platform:test",
                    "job_namespace": "sf", "load_incluster_config": False,
                    "kubeconfig_file": str(kubeconfig)}
        with instance_for_test(overrides={"run_launcher": {
                "module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}}) as instance:
            yield instance, created


def test_each_step_is_a_job_and_only_model_steps_get_a_gpu(tmp_path, k8s_instance):
    instance, created = k8s_instance
    config = write_config(tmp_path / "sources.yaml", make_source(tmp_path), tmp_path / "store",
                          execution={"executor": "k8s"}, k8s=K8S)
    steps = _launch_every_step(_recon_job(tmp_path, config), instance)

    by_step = {j["metadata"]["labels"]["dagster/op"]: j for j in created}
    assert set(by_step) == set(steps) and len(created) == len(steps)
    assert set(GPU_STEPS) < set(steps)
    for step, job in by_step.items():
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == "sf-platform:test"
        assert container["args"][:3] == ["dagster", "api", "execute_step"], step
        resources = container.get("resources") or {}
        if step in GPU_STEPS:
            assert resources["limits"] == {"nvidia.com/gpu": "1", "memory": "24Gi"}, step
            assert resources["requests"] == {"memory": "24Gi"}, step
            assert pod["nodeSelector"] == K8S["node_selector"], step
            assert [(t["key"], t["operator"], t["value"], t["effect"]) for t in pod["tolerations"]] == [
                ("dedicated", "Equal", "gpu", "NoSchedule")], step
        else:
            assert "nvidia.com/gpu" not in str(job), step
            assert not pod.get("nodeSelector") and not pod.get("tolerations"), step
            assert not resources.get("limits") and not resources.get("requests"), step


def test_default_tags_and_gpu_count():
    tags = gpu_op_tags(K8sConfig(), gpus=2)
    k8s = tags[K8S_CONFIG_TAG]
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "2", "memory": "16Gi"}
    assert k8s["pod_spec_config"]["node_selector"] == {"sf-platform/pool": "gpu"}
    assert k8s["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert tags[CELERY_QUEUE_TAG] == "gpu"
    with pytest.raises(ValueError, match="at least one GPU"):
        gpu_op_tags(K8sConfig(), gpus=0)
