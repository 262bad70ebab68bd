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


def _start_dev(env, port):
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
         "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _wait_for(fn, timeout: float, what: str):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def test_a_backfill_launched_like_the_ui_completes_through_the_daemon(tmp_path):
    """The production path: a partition backfill submitted through the webserver's GraphQL API
    (as the UI's "Materialize" on the shards' partitions page does), queued, picked up by the
    daemon, split into runs by the assets' BackfillPolicy, launched by the run launcher."""
    home = tmp_path / "home"
    home.mkdir()
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(yaml.safe_dump({
        "storage": str(tmp_path / "store"),
        "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"),
                     "num_images": 4, "shard_size": 2, "seed": 5}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}}}))
    env = dict(os.environ, DAGSTER_HOME=str(home), SF_PLATFORM_CONFIG=str(cfg))
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions("sources", ["syn"])
        defs = build_definitions(str(cfg))
        assert defs.resolve_job_def("index_sources").execute_in_process(
            partition_key="syn", instance=instance).success
        shard_assets = sorted(k.to_user_string() for k in
                              defs.resolve_job_def("process_shard").asset_layer.selected_asset_keys)
    finally:
        os.environ.pop("DAGSTER_HOME", None)

    port = _free_port()
    proc = _start_dev(env, port)
    try:
        _wait_for(lambda: _graphql(port, "{ assetNodes { id } }")["assetNodes"], 180, "the webserver")
        selection = ", ".join(f'{{path: ["{a}"]}}' for a in shard_assets)
        launched = _graphql(port, f"""mutation {{ launchPartitionBackfill(backfillParams: {{
            partitionNames: ["syn/00000", "syn/00001"], assetSelection: [{selection}]}}) {{
              __typename ... on LaunchBackfillSuccess {{ backfillId }}
              ... on PythonError {{ message }} }} }}""")["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def status():
            data = _graphql(port, f'{{ partitionBackfillOrError(backfillId: "{backfill_id}") {{ '
                                  '... on PartitionBackfill { status } } }')
            s = data["partitionBackfillOrError"]["status"]
            assert s not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), s
            return s if s in ("COMPLETED", "COMPLETED_SUCCESS") else None

        _wait_for(status, 600, "the backfill to complete")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/backfill") == backfill_id]
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # Both shards in one run: the BackfillPolicy's range, not a run per shard.
        assert len(runs) == 1 and runs[0].tags.get("dagster/asset_partition_range_end") == "syn/00001"
        for shard in ("00000", "00001"):
            assert (tmp_path / "store" / "assets" / "qa_counting" / "syn" / f"{shard}.parquet").exists()
    finally:
        os.environ.pop("DAGSTER_HOME", None)
