"""A given-depth source that lost one depth map, with no depth weights configured (issue 10,
item 8): the shard finishes, the image has no depth, depth-dependent questions skip it, and
the quarantine table and the depth table both say why.  Real Dagster, real files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import yaml

from sf_platform.definitions import build_definitions
from sf_platform.storage.layout import asset_key, quarantine_key
from sf_platform.storage.object_store import ObjectStore

PARTITION = "syn/00000"


def test_missing_depth_map_with_policy_skip_finishes_the_shard(tmp_path: Path):
    store = ObjectStore(root="file://" + str(tmp_path / "store"))
    cfg = {"storage": store.root,
           "sources": [{"name": "syn", "format": "synthetic", "images": str(tmp_path / "syn"),
                        "num_images": 6, "shard_size": 6, "seed": 4}],
           # Real profile, no depth model: a depth step that fell back to the model would fail.
           "models": {"profile": "real", "device": "cpu", "masks": {"backend": "box"}, "depth": {"model": None}}}
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(cfg))
    defs = build_definitions(str(path))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("sources", ["syn"])
    instance.add_dynamic_partitions("shards", [PARTITION])
    assert defs.resolve_job_def("index_sources").execute_in_process(partition_key="syn", instance=instance).success

    maps = sorted((tmp_path / "syn").rglob("*.npy"))
    assert len(maps) == 6
    maps[0].unlink()

    res = defs.resolve_job_def("process_shard").execute_in_process(partition_key=PARTITION, instance=instance)
    assert res.success

    depth = store.read_table(asset_key("depth", PARTITION))
    skipped = depth.filter(pc.equal(depth.column("depth_status"), "skipped")).to_pylist()
    assert len(skipped) == 1 and skipped[0]["depth_map"] is None
    assert skipped[0]["depth_reason"] == "depth_missing" and "depth_policy: skip" in skipped[0]["depth_detail"]
    lost = skipped[0]["image_id"]
    assert set(depth.column("depth_status").to_pylist()) == {"given", "skipped"}

    quarantine = store.read_table(quarantine_key(PARTITION)).to_pylist()
    rows = [q for q in quarantine if q["kind"] == "depth"]
    assert [(q["image_id"], q["reason"]) for q in rows] == [(lost, "depth_missing")]
    assert maps[0].name in rows[0]["detail"] and rows[0]["image_uri"]

    scene = store.read_table(asset_key("scene", PARTITION)).to_pylist()
    assert {r["depth_median"] for r in scene if r["image_id"] == lost} == {None}
    assert all(r["depth_median"] is not None for r in scene if r["image_id"] != lost and r["bbox_px"])
    near_far = store.read_table(asset_key("qa_near_far", PARTITION))
    assert near_far.num_rows > 0 and lost not in near_far.column("image_id").to_pylist()
    perspective = store.read_table(asset_key("qa_perspective", PARTITION)).to_pylist()
    assert not [p for p in perspective if p["image_id"] == lost
                and p["fact"]["predicate"] in ("in_front_of_person", "behind_person")]

    # Each perception asset logged its one-line summary.
    messages = [e.user_message for e in instance.all_logs(res.run_id) if e.user_message]
    assert any(m.startswith("depth: 6 images, 0 model / 5 given, 0 rejected, 1 skipped") for m in messages)
    for prefix in ("detections: ", "masks: ", "poses: ", "scene: "):
        assert any(m.startswith(prefix) for m in messages), prefix
