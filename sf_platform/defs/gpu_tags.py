"""Op tags that send a GPU op's step to a GPU: a GPU pod on Kubernetes, a GPU worker on Celery.

``dagster-k8s/config`` is read by ``k8s_job_executor`` (``defs/executors.py``) and merged into
the Job it creates for the step: the container asks for one GPU
(``resources.limits["nvidia.com/gpu"] = "1"``; Kubernetes needs GPUs as limits, requests
default to them) and for the configured memory (request = limit, so the pod is never evicted
for memory another pod took), the pod is pinned to the GPU node pool by node selector and
tolerates the taint that keeps CPU work off those nodes.  Values come from ``models.k8s``.
(``K8sRunLauncher`` alone reads only run tags: without the executor these never reach a pod.)

``dagster-celery/queue`` is read by ``celery_executor``: the step goes to the GPU queue, which
only workers on GPU machines consume (``execution.celery.gpu_queue``).
"""

from __future__ import annotations

from typing import Any

from sf_platform.config import K8sConfig

K8S_CONFIG_TAG = "dagster-k8s/config"
CELERY_QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
DEFAULT_GPU_QUEUE = "gpu"


def gpu_op_tags(k8s: K8sConfig, gpus: int = 1, queue: str = DEFAULT_GPU_QUEUE) -> dict[str, Any]:
    """Op tags requesting ``gpus`` GPUs on the configured node pool, and the Celery GPU queue."""
    if gpus < 1:
        raise ValueError(f"a GPU op needs at least one GPU, got {gpus}")
    memory = {"memory": k8s.memory}
    return {
        K8S_CONFIG_TAG: {
            "container_config": {"resources": {
                "limits": {k8s.gpu_resource: str(gpus), **memory},
                "requests": memory,
            }},
            "pod_spec_config": {
                "node_selector": dict(k8s.node_selector),
                "tolerations": [dict(t) for t in k8s.tolerations],
            },
        },
        CELERY_QUEUE_TAG: queue,
    }
