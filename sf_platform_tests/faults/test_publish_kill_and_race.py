"""A release killed mid-write is never published; two runs racing for a version: one wins whole.

Real processes (``publish_worker``), real SIGKILL, on a local folder and on the moto S3
endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sf_platform.core import release
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.core.qa.scenes import random_scene

pytestmark = pytest.mark.faults
REPO = Path(__file__).resolve().parents[2]


def put_inputs(store, shards: int = 3) -> None:
    for i in range(shards):
        for task, table in generate_tasks(random_scene(30, seed=i, source="o365"), QASettings()).items():
            store.write_table(f"assets/qa_{task}/o365/{i:05d}.parquet", table)


def spawn(store, version: str, marker: str, *, go: Path | None = None, slow: float = 0.0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sf_platform_tests.faults.publish_worker", store.root, version, marker,
           "--slow", str(slow)]
    if store.endpoint_url:
        cmd += ["--endpoint", store.endpoint_url]
    if go:
        cmd += ["--go", str(go)]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def token_of(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN "))


def wait_for(cond, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while not cond():
        assert time.time() < end, "timed out waiting for the worker to reach the kill point"
        time.sleep(0.02)


def assert_published_whole(store, version: str, marker: str) -> dict:
    man = json.loads(store.read_text(f"release/{version}/manifest.json"))
    for f in man["files"]:
        data = store.read_bytes(f"release/{version}/{f['path']}")
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
    assert {f["path"] for f in man["files"]} == {k.split("/", 2)[2] for k in store.list(f"release/{version}")
                                                 if "/quality/" not in k and not k.endswith("manifest.json")}
    assert store.read_text(f"release/{version}/quality/index.html") == f"<html>report of {marker}</html>"
    assert store.list("release/.staging") == []
    return man


def cli_stats(store, version: str, tmp_path: Path) -> subprocess.CompletedProcess:
    cfg = tmp_path / "cfg.yaml"
    s3 = f"s3: {{endpoint_url: {store.endpoint_url}}}\n" if store.endpoint_url else ""
    cfg.write_text(f"storage: {store.root}\n{s3}")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "sf_platform.cli", "stats", version, "--config", str(cfg)],
                          check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("phase", ["staging", "placing"])
def test_release_killed_mid_write_is_never_published_and_a_rerun_completes_it(store, tmp_path, phase):
    put_inputs(store)
    worker = spawn(store, "v1", "killed", slow=0.15)
    if phase == "staging":  # some files staged, nothing placed
        wait_for(lambda: len(store.list("release/.staging")) >= 4)
    elif store.is_s3:  # some staged objects copied to final keys, no manifest yet
        wait_for(lambda: len(store.list("release/v1")) >= 2)
    else:  # the staged folder renamed into place, the manifest not yet created
        wait_for(lambda: store.exists("release/v1/README.md"))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert not store.exists("release/v1/manifest.json")
    if phase == "placing":
        assert store.list("release/v1"), "the kill should have left files at the final prefix"

    with pytest.raises(release.ReleaseError, match="not published") as err:
        release.release_stats(store, "v1")
    assert ("interrupted publish" if phase == "placing" else "staged attempt") in str(err.value)
    with pytest.raises(release.ReleaseError, match="not published"):
        release.export_release(store, "v1", "qwen", ObjectStore(root=f"file://{tmp_path}/exports"))
    cli = cli_stats(store, "v1", tmp_path)
    assert cli.returncode == 1 and "not published" in cli.stderr and "Traceback" not in cli.stderr + cli.stdout

    rerun = spawn(store, "v1", "rerun")  # the dead holder's lock (same host, pid gone) is taken over
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    man = assert_published_whole(store, "v1", "rerun")
    assert man["publish_token"] == token_of(out)
    assert release.release_stats(store, "v1")["total"] > 0
    ok = cli_stats(store, "v1", tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout)["version"] == "v1"


def test_two_runs_racing_for_a_version_one_wins_whole(store, tmp_path):
    put_inputs(store, shards=2)
    go = tmp_path / "go"
    a, b = spawn(store, "v1", "run-a", go=go, slow=0.05), spawn(store, "v1", "run-b", go=go, slow=0.05)
    time.sleep(1.0)  # both imported and waiting
    go.touch()
    outs = {m: p.communicate(timeout=300)[0] for m, p in (("run-a", a), ("run-b", b))}
    codes = {"run-a": a.returncode, "run-b": b.returncode}
    assert sorted(codes.values()) == [0, 3], outs
    winner = next(m for m, c in codes.items() if c == 0)
    loser = next(m for m, c in codes.items() if c == 3)
    assert "already published" in outs[loser] or "being published" in outs[loser]
    man = assert_published_whole(store, "v1", winner)  # the loser's report never reached the release
    assert man["publish_token"] == token_of(outs[winner])
