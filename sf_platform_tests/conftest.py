"""Shared fixtures: object stores (a local folder and a real S3 endpoint on loopback).

The S3 endpoint is moto in server mode on 127.0.0.1, reached over HTTP by s3fs exactly like
AWS or MinIO.  ``store`` is parametrized over both, so a test that takes it runs twice.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import pytest

from sf_platform.storage.object_store import ObjectStore

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

S3_KEY = "testing-access-key"
S3_SECRET = "testing-secret-key-never-logged"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for the whole session; credentials via the AWS env vars."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh, empty bucket on the moto endpoint; yields its name."""
    import boto3

    name = f"sf-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def file_store(tmp_path) -> ObjectStore:
    return ObjectStore(root="file://" + str(tmp_path / "store"))


@pytest.fixture
def s3_store(s3_endpoint, s3_bucket) -> ObjectStore:
    return ObjectStore(root=f"s3://{s3_bucket}/sf", endpoint_url=s3_endpoint)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path) -> ObjectStore:
    """The same test once against a local folder and once against the S3 endpoint."""
    if request.param == "file":
        return ObjectStore(root="file://" + str(tmp_path / "store"))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return ObjectStore(root=f"s3://{bucket}/sf", endpoint_url=endpoint)
