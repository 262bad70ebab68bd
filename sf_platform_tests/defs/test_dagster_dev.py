"""`dagster dev` loads the workspace and shows runs the CLI made in the same DAGSTER_HOME."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import yaml

from sf_platform.definitions import build_definitions

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def test_ui_loads_location_and_shows_cli_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(yaml.safe_dump({"storage": str(tmp_path / "store"), "sources": [
        {"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"), "num_images": 2}]}))
    env = dict(os.environ, DAGSTER_HOME=str(home), SF_PLATFORM_CONFIG=str(cfg))
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions("sources", ["syn"])
        assert build_definitions(str(cfg)).resolve_job_def("index_sources").execute_in_process(
            partition_key="syn", instance=instance).success
    finally:
        os.environ.pop("DAGSTER_HOME", None)

    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
         "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        assets = None
        while time.time() < deadline:
            try:
                assets = _graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
                if assets:
                    break
            except OSError:
                pass
            time.sleep(1)
        names = {"/".join(a["assetKey"]["path"]) for a in assets or []}
        assert {"source_index", "images", "depth", "scene", "qa_near_far", "release"} <= names
        runs = _graphql(port, "{ runsOrError { ... on Runs { results { jobName status } } } }")
        assert {"jobName": "index_sources", "status": "SUCCESS"} in runs["runsOrError"]["results"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # dagster dev ignores SIGTERM from a non-interactive shell
        proc.wait(timeout=30)
