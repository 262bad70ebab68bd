"""Fixtures for the production shapes: a throwaway PostgreSQL database holding a Dagster
instance built from ``deploy/dagster.yaml``, and this machine's RabbitMQ.

A service that is down fails the test with the command that starts it (``.ci/run`` starts
both); it never skips, so CI cannot pass without having exercised them.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
RABBITMQ = ("127.0.0.1", 5672)
BROKER = "pyamqp://guest@127.0.0.1//"


def _require_port(host: str, port: int, what: str, how: str) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{what} is not reachable at {host}:{port} ({exc}); start it: {how}", pytrace=False)


def _admin_connection():
    import psycopg2

    _require_port(PG_HOST, PG_PORT, "PostgreSQL",
                  "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty database on the local PostgreSQL (trust auth), dropped afterwards."""
    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def production_home(tmp_path, pg_database, monkeypatch) -> Path:
    """A ``DAGSTER_HOME`` holding ``deploy/dagster.yaml`` unchanged; its ``env:`` fields point at
    the throwaway database through this process's environment (and that of its children)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": PG_HOST, "DAGSTER_PG_USERNAME": PG_USER,
           # trust auth ignores the password; the file still requires the variable.
           "DAGSTER_PG_PASSWORD": "unused-with-trust-auth", "DAGSTER_PG_DB": pg_database}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return home


@pytest.fixture
def rabbitmq() -> str:
    """This machine's RabbitMQ (guest/guest); yields the broker URL."""
    _require_port(*RABBITMQ, "RabbitMQ", "rabbitmq-server -detached")
    return BROKER
