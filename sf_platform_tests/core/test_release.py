import hashlib
import json

import pyarrow.dataset as pads
import pytest

from sf_platform.config import ReleaseSettings
from sf_platform.core import release
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.release_rows import RELEASE_ROWS
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.core.qa.scenes import random_scene
from sf_platform_tests.release.inputs import REAL, TERMS, S, put_inputs

TINY = {
    "profile": "tiny",
    "models": {"depth": {"model": "/tmp/tiny-depth", "profile": "tiny"}},
    "code_versions": {},
}


def test_build_release_layout_counts_and_manifest(store):
    keys = put_inputs(store)
    summary = release.build_release(store, "v1", keys, REAL, S, sources=TERMS,
                                    release=ReleaseSettings(validation_fraction=0.25))
    man = json.loads(store.read_text("release/v1/manifest.json"))
    assert man["profile"] == "real" and man["tiny"] is False
    assert man["thresholds"]["near_far_log_margin"] == 0.2
    assert man["code_versions"]["qa_near_far"] and man["code_versions"]["scene"] == "scene-1"
    assert man["models"] == REAL["models"]
    for f in man["files"]:
        data = store.read_bytes(f"release/v1/{f['path']}")
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    data_files = [f for f in man["files"] if f["kind"] == "data"]
    assert {f["path"] for f in data_files} >= {"data/near_far/train.parquet", "data/near_far/validation.parquet"}
    for f in data_files:
        assert store.read_table(f"release/v1/{f['path']}").num_rows == f["rows"]
    for fmt, ext in (("qwen", ".jsonl"), ("internvl", ".jsonl"), ("llava", ".json")):
        assert len(store.list(f"release/v1/exports/{fmt}", ext)) >= 6  # one per task (+ InternVL metas)
    assert "release/v1/exports/qwen/near_far.jsonl" in summary["files"]
    n_o365 = sum(store.read_table(k).num_rows for k in keys["near_far"] if "/o365/" in k)
    assert summary["counts"]["near_far"]["o365"] == n_o365
    assert summary["total"] == sum(f["rows"] for f in data_files)
    card = store.read_text("release/v1/README.md")
    assert card.startswith("---\nlicense:\n- cc-by-2.0\n- cc-by-4.0\n") and "path: data/near_far/train*.parquet" in card
    assert f"{n_o365:,}" in card and "WARNING" not in card
    with pytest.raises(release.ReleaseError, match="already published"):
        release.build_release(store, "v1", keys, REAL, S, sources=TERMS)


def test_manifest_is_written_last(file_store, monkeypatch):
    """Every file is written under the attempt's staging prefix; the only write to a final key
    is the manifest, created once (create-if-absent), after the staged folder moved into place."""
    keys = put_inputs(file_store)
    order = []
    for name in ("write_bytes", "create_bytes"):
        real = getattr(type(file_store), name)
        monkeypatch.setattr(type(file_store), name,
                            lambda self, k, d, _r=real, _n=name: (order.append((_n, k)), _r(self, k, d))[1])
    release.build_release(file_store, "v2", keys, REAL, S, sources=TERMS)
    assert [w for w in order if w[1].startswith("release/v2/")] == [("create_bytes", "release/v2/manifest.json")]
    staged = [k for n, k in order if n == "write_bytes" and not k.startswith("release/.locks/")]
    assert staged and all(k.startswith("release/.staging/v2-") for k in staged)
    assert file_store.exists("release/v2/README.md") and not file_store.list("release/.staging")


def test_tiny_profile_is_refused_unless_allowed(file_store):
    keys = put_inputs(file_store)
    with pytest.raises(release.TinyProfileError, match="tiny"):
        release.build_release(file_store, "t1", keys, TINY, S, sources=TERMS)
    with pytest.raises(release.TinyProfileError, match="depth"):
        release.build_release(file_store, "t1", keys, {**REAL, "models": TINY["models"]}, S, sources=TERMS)
    assert not file_store.exists("release/t1/manifest.json")
    summary = release.build_release(file_store, "t1", keys, TINY, S, allow_tiny=True, sources=TERMS)
    assert summary["tiny"] is True
    card = file_store.read_text("release/t1/README.md")
    assert "WARNING: BUILT WITH TINY TEST MODELS" in card.split("---", 2)[2][:400]
    assert json.loads(file_store.read_text("release/t1/manifest.json"))["tiny"] is True


def test_bad_inputs_fail_clearly(file_store):
    keys = put_inputs(file_store)
    with pytest.raises(release.ReleaseError, match="version"):
        release.build_release(file_store, "../x", keys, REAL, S, sources=TERMS)
    with pytest.raises(release.ReleaseError, match="not a QA table key"):
        release.build_release(file_store, "b1", {"near_far": keys["left_right"]}, REAL, S, sources=TERMS)
    with pytest.raises(release.ReleaseError, match="profile"):
        release.build_release(file_store, "b1", keys, {"models": {}}, S, sources=TERMS)
    file_store.write_table(
        "assets/qa_near_far/o365/00009.parquet",
        generate_tasks(random_scene(5, seed=1), S)["left_right"],
    )
    with pytest.raises(release.ReleaseError, match="expected only 'near_far'"):
        release.build_release(
            file_store, "b1", {"near_far": ["assets/qa_near_far/o365/00009.parquet"]}, REAL, S, sources=TERMS
        )
    with pytest.raises(release.ReleaseError, match="'openimages' has no declared licence"):
        release.build_release(file_store, "b2", keys, REAL, S, sources={"o365": TERMS["o365"]})


def test_release_loads_with_datasets_and_pyarrow(file_store, tmp_path):
    import datasets

    keys = put_inputs(file_store)
    summary = release.build_release(file_store, "v3", keys, REAL, S, sources=TERMS)
    root = file_store.root[len("file://") :] + "/release/v3"
    ds = datasets.load_dataset(
        "parquet", data_files=f"{root}/data/near_far/*.parquet", split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == summary["totals"]["near_far"]
    assert set(ds.column_names) == set(RELEASE_ROWS.names)
    row = ds[0]
    assert row["objects"][0]["bbox_1000"] and row["fact"]["predicate"] == "closer_than"
    # datasets caches a local folder by its name and card, not its path: a private cache per test
    by_card = datasets.load_dataset(root, "counting", cache_dir=str(tmp_path / "hf"))
    assert sum(d.num_rows for d in by_card.values()) == summary["totals"]["counting"]
    table = pads.dataset(f"{root}/data/left_right", format="parquet").to_table()
    assert table.num_rows == summary["totals"]["left_right"] and table.schema.equals(RELEASE_ROWS)


def test_export_release_and_stats(store, tmp_path):
    keys = put_inputs(store)
    release.build_release(store, "v4", keys, REAL, S, sources=TERMS)
    before = store.read_text("release/v4/manifest.json")
    dest = ObjectStore(root=f"file://{tmp_path}/out")
    out = release.export_release(store, "v4", "internvl", dest, images_root="/data/images")
    assert out and all(k.startswith("exports/internvl/") for k in out)
    assert store.read_text("release/v4/manifest.json") == before  # the release is not changed
    line = json.loads(dest.read_text(out[0]).splitlines()[0])
    assert {"width", "height"} <= set(line)
    stats = release.release_stats(store, "v4")
    assert stats["total"] == sum(stats["totals"].values()) > 0
    assert stats["balance"]["near_far"]["rows"] == stats["totals"]["near_far"]
    assert "yes_no" in stats["balance"]["near_far"]
    with pytest.raises(release.ReleaseError, match="no manifest"):
        release.release_stats(store, "v404")
    with pytest.raises(release.ReleaseError, match="unknown export format"):
        release.export_release(store, "v4", "sharegpt", dest)
