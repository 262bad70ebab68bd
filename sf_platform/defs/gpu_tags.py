"""Kubernetes run tags that put a GPU op's step on a GPU node.

The ``dagster-k8s/config`` tag is read by dagster-k8s' run launcher / step executor and merged
into the Job it creates for the step: the container asks for one GPU
(``resources.limits["nvidia.com/gpu"] = "1"``; Kubernetes needs GPUs as limits, requests
default to them), the pod is pinned to the GPU node pool by node selector and tolerates the
taint that keeps CPU work off those nodes.  The values come from ``models.k8s`` in the config.
"""

from __future__ import annotations

from typing import Any

from sf_platform.config import K8sConfig

K8S_CONFIG_TAG = "dagster-k8s/config"


def gpu_op_tags(k8s: K8sConfig, gpus: int = 1) -> dict[str, Any]:
    """Op tags requesting ``gpus`` GPUs on the configured node pool."""
    if gpus < 1:
        raise ValueError(f"a GPU op needs at least one GPU, got {gpus}")
    return {
        K8S_CONFIG_TAG: {
            "container_config": {"resources": {"limits": {k8s.gpu_resource: str(gpus)}}},
            "pod_spec_config": {
                "node_selector": dict(k8s.node_selector),
                "tolerations": [dict(t) for t in k8s.tolerations],
            },
        }
    }
