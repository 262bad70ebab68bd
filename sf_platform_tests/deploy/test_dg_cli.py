"""``dg check defs`` and ``dg list defs`` (dagster-dg-cli) work on a fresh checkout, through the
``[tool.dg]`` section of pyproject.toml, and list what the code location defines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sf_platform.definitions import build_definitions
from sf_platform_tests.deploy.conftest import REPO

DG = str(Path(sys.executable).parent / "dg")


def _dg(tmp_path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home), PYTHONPATH=str(REPO),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SF_PLATFORM_CONFIG", None)  # the location loads without a config (no sources)
    return subprocess.run([DG, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_dg_check_defs_succeeds(tmp_path):
    proc = _dg(tmp_path, "check", "defs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


def test_dg_list_defs_lists_the_code_locations_assets_and_jobs(tmp_path):
    proc = _dg(tmp_path, "list", "defs", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = json.loads(proc.stdout)
    defs = build_definitions(None)
    expected_assets = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {a["asset_key"] for a in listed["assets"]} == expected_assets
    assert {"source_index", "images", "depth", "scene", "qa_near_far", "release"} <= expected_assets
    assert {j["name"] for j in listed["jobs"]} >= {"index_sources", "process_shard", "publish_release"}
