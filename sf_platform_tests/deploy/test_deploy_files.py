"""The deployment files point at what exists: the Helm values' code server and the image's
command load the real code location, and the values ask the chart for the instance that
deploy/README.md describes (the chart itself is not available offline to render them)."""

from __future__ import annotations

import importlib
import re

import dagster as dg
import yaml

from sf_platform_tests.deploy.conftest import REPO

VALUES = yaml.safe_load((REPO / "deploy" / "values.yaml").read_text())


def _grpc_target(args: list[str]) -> tuple[str, str]:
    opts = dict(zip(args[::2], args[1::2], strict=True))
    return opts["--module-name"], opts["--attribute"]


def _loads_definitions(module: str, attribute: str) -> None:
    assert isinstance(getattr(importlib.import_module(module), attribute), dg.Definitions)


def test_code_server_of_the_chart_and_of_the_image_load_the_code_location():
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    _loads_definitions(*_grpc_target(deployment["dagsterApiGrpcArgs"]))
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL).group(1).replace("\\\n", "")
    args = yaml.safe_load(cmd)
    assert args[:3] == ["dagster", "api", "grpc"]
    _loads_definitions(*_grpc_target(args[3:7]))
    for package in ("dagster_postgres", "dagster_k8s", "dagster_aws", "dagster_celery"):
        assert package in dockerfile
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["SF_PLATFORM_CONFIG"].startswith(deployment["volumeMounts"][0]["mountPath"] + "/")


def test_values_render_the_production_instance():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    daemon = VALUES["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runCoordinator"] == {"enabled": True, "type": "QueuedRunCoordinator"}
    concurrency = VALUES["concurrency"]
    assert concurrency["enabled"] and concurrency["pools"]["granularity"] == "op"
    assert concurrency["pools"]["defaultLimit"] >= 1 and concurrency["runs"]["maxConcurrentRuns"] >= 1
    assert VALUES["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert VALUES["computeLogManager"]["config"]["s3ComputeLogManager"]["bucket"]
    assert VALUES["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    # deploy/dagster.yaml uses the same driver (see test_postgres_instance.py for it loading)
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
