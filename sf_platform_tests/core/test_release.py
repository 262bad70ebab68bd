import hashlib
import json

import pyarrow.dataset as pads
import pytest

from sf_platform.core import release, schemas
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.scenes import random_scene

S = QASettings()
REAL = {
    "profile": "real",
    "models": {"depth": "depth-anything/Depth-Anything-V2-Small-hf"},
    "code_versions": {"scene": "scene-1"},
}
TINY = {
    "profile": "tiny",
    "models": {"depth": {"model": "/tmp/tiny-depth", "profile": "tiny"}},
    "code_versions": {},
}


def put_inputs(store) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for source, shard, seed in (
        ("o365", "00000", 1),
        ("o365", "00001", 2),
        ("openimages", "00000", 3),
    ):
        for task, table in generate_tasks(random_scene(30, seed=seed, source=source), S).items():
            key = f"assets/qa_{task}/{source}/{shard}.parquet"
            store.write_table(key, table)
            keys.setdefault(task, []).append(key)
    return keys


def test_build_release_layout_counts_and_manifest(store):
    keys = put_inputs(store)
    summary = release.build_release(store, "v1", keys, REAL, S)
    man = json.loads(store.read_text("release/v1/manifest.json"))
    assert man["profile"] == "real" and man["tiny"] is False
    assert man["thresholds"]["near_far_log_margin"] == 0.2
    assert man["code_versions"]["qa_near_far"] and man["code_versions"]["scene"] == "scene-1"
    assert man["models"] == REAL["models"]
    for f in man["files"]:
        data = store.read_bytes(f"release/v1/{f['path']}")
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    data_files = [f for f in man["files"] if f["kind"] == "data"]
    assert {f["path"] for f in data_files} >= {
        "data/near_far/o365-00000.parquet",
        "data/near_far/openimages-00000.parquet",
    }
    for f in data_files:
        assert store.read_table(f"release/v1/{f['path']}").num_rows == f["rows"]
    for fmt in ("qwen", "internvl", "llava"):
        assert store.list(f"release/v1/exports/{fmt}", ".jsonl")
    assert "release/v1/exports/qwen/near_far-o365-00001.jsonl" in summary["files"]
    n_o365 = sum(store.read_table(k).num_rows for k in keys["near_far"] if "/o365/" in k)
    assert summary["counts"]["near_far"]["o365"] == n_o365
    assert summary["total"] == sum(f["rows"] for f in data_files)
    card = store.read_text("release/v1/README.md")
    assert card.startswith("---\nlicense: other") and "path: data/near_far/*.parquet" in card
    assert f"{n_o365:,}" in card and "WARNING" not in card
    with pytest.raises(release.ReleaseError, match="already published"):
        release.build_release(store, "v1", keys, REAL, S)


def test_manifest_is_written_last(file_store, monkeypatch):
    """Every file is written under the attempt's staging prefix; the only write to a final key
    is the manifest, created once (create-if-absent), after the staged folder moved into place."""
    keys = put_inputs(file_store)
    order = []
    for name in ("write_bytes", "create_bytes"):
        real = getattr(type(file_store), name)
        monkeypatch.setattr(type(file_store), name,
                            lambda self, k, d, _r=real, _n=name: (order.append((_n, k)), _r(self, k, d))[1])
    release.build_release(file_store, "v2", keys, REAL, S)
    assert [w for w in order if w[1].startswith("release/v2/")] == [("create_bytes", "release/v2/manifest.json")]
    staged = [k for n, k in order if n == "write_bytes" and not k.startswith("release/.locks/")]
    assert staged and all(k.startswith("release/.staging/v2-") for k in staged)
    assert file_store.exists("release/v2/README.md") and not file_store.list("release/.staging")


def test_tiny_profile_is_refused_unless_allowed(file_store):
    keys = put_inputs(file_store)
    with pytest.raises(release.TinyProfileError, match="tiny"):
        release.build_release(file_store, "t1", keys, TINY, S)
    with pytest.raises(release.TinyProfileError, match="depth"):
        release.build_release(file_store, "t1", keys, {**REAL, "models": TINY["models"]}, S)
    assert not file_store.exists("release/t1/manifest.json")
    summary = release.build_release(file_store, "t1", keys, TINY, S, allow_tiny=True)
    assert summary["tiny"] is True
    card = file_store.read_text("release/t1/README.md")
    assert "WARNING: BUILT WITH TINY TEST MODELS" in card.split("---", 2)[2][:400]
    assert json.loads(file_store.read_text("release/t1/manifest.json"))["tiny"] is True


def test_bad_inputs_fail_clearly(file_store):
    keys = put_inputs(file_store)
    with pytest.raises(release.ReleaseError, match="version"):
        release.build_release(file_store, "../x", keys, REAL, S)
    with pytest.raises(release.ReleaseError, match="not a QA table key"):
        release.build_release(file_store, "b1", {"near_far": keys["left_right"]}, REAL, S)
    with pytest.raises(release.ReleaseError, match="profile"):
        release.build_release(file_store, "b1", keys, {"models": {}}, S)
    file_store.write_table(
        "assets/qa_near_far/o365/00009.parquet",
        generate_tasks(random_scene(5, seed=1), S)["left_right"],
    )
    with pytest.raises(release.ReleaseError, match="expected only 'near_far'"):
        release.build_release(
            file_store, "b1", {"near_far": ["assets/qa_near_far/o365/00009.parquet"]}, REAL, S
        )


def test_release_loads_with_datasets_and_pyarrow(file_store):
    import datasets

    keys = put_inputs(file_store)
    summary = release.build_release(file_store, "v3", keys, REAL, S)
    root = file_store.root[len("file://") :] + "/release/v3"
    ds = datasets.load_dataset(
        "parquet", data_files=f"{root}/data/near_far/*.parquet", split="train"
    )
    assert ds.num_rows == summary["totals"]["near_far"]
    assert set(ds.column_names) == set(schemas.QA.names)
    row = ds[0]
    assert row["objects"][0]["bbox_1000"] and row["fact"]["predicate"] == "closer_than"
    by_card = datasets.load_dataset(root, "counting", split="train")
    assert by_card.num_rows == summary["totals"]["counting"]
    table = pads.dataset(f"{root}/data/left_right", format="parquet").to_table()
    assert table.num_rows == summary["totals"]["left_right"] and table.schema.equals(schemas.QA)


def test_export_release_and_stats(store):
    keys = put_inputs(store)
    release.build_release(store, "v4", keys, REAL, S)
    before = json.loads(store.read_text("release/v4/manifest.json"))
    out = release.export_release(store, "v4", "internvl")
    assert out and all(k.startswith("release/v4/exports/internvl/") for k in out)
    after = json.loads(store.read_text("release/v4/manifest.json"))
    assert len(after["files"]) == len(before["files"])
    line = json.loads(store.read_text(out[0]).splitlines()[0])
    assert {"width", "height"} <= set(line)
    stats = release.release_stats(store, "v4")
    assert stats["total"] == sum(stats["totals"].values()) > 0
    assert stats["balance"]["near_far"]["rows"] == stats["totals"]["near_far"]
    assert "yes_no" in stats["balance"]["near_far"]
    with pytest.raises(release.ReleaseError, match="no manifest"):
        release.release_stats(store, "v404")
    with pytest.raises(release.ReleaseError, match="unknown export format"):
        release.export_release(store, "v4", "sharegpt")
