"""Fixtures of the failure-injection tests: a fault proxy in front of the moto endpoint."""

from __future__ import annotations

import pytest

from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.faults.s3_fault_proxy import FaultProxy


@pytest.fixture
def fault_proxy(s3_endpoint):
    """A proxy that forwards everything until a test configures faults."""
    with FaultProxy(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture
def proxied_store(fault_proxy, s3_bucket) -> ObjectStore:
    """The S3 store of ``s3_bucket`` reached through ``fault_proxy``."""
    return ObjectStore(root=f"s3://{s3_bucket}/sf", endpoint_url=fault_proxy.url)
