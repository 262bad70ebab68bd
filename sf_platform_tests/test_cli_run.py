"""`sf-platform run` end to end: real formats in, DESIGN.md keys out, on file:// and on S3."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from sf_platform.cli import main
from sf_platform.core import schemas
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.sample_sources import (
    make_objects365_source,
    make_openimages_source,
    upload_tree,
)


def _sources_on_s3(sources: list[dict], bucket: str, endpoint: str) -> list[dict]:
    """Upload every local input of the sources to the bucket and point the config at it."""
    moved = []
    for i, src in enumerate(sources):
        src = dict(src)
        for key in ("images", "annotations", "classes", "depth", "keypoints"):
            if key not in src:
                continue
            p = Path(src[key])
            prefix = f"inputs/{i}/{key}"
            if p.is_dir():
                src[key] = upload_tree(p, bucket, prefix, endpoint)
            else:
                upload_tree(p.parent, bucket, prefix, endpoint)
                src[key] = f"s3://{bucket}/{prefix}/{p.name}"
        moved.append(src)
    return moved


@pytest.mark.slow
def test_run_produces_design_tables(store: ObjectStore, tmp_path, monkeypatch):
    sources = [make_objects365_source(tmp_path), make_openimages_source(tmp_path)]
    config = {"storage": store.root, "sources": sources,
              "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}}}
    if store.is_s3:
        bucket = store.root[len("s3://"):].split("/")[0]
        config["sources"] = _sources_on_s3(sources, bucket, store.endpoint_url)
        config["s3"] = {"endpoint_url": store.endpoint_url}
    cfg_path = tmp_path / "sources.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SF_PLATFORM_CONFIG", str(cfg_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))

    args = ["run", "--config", str(cfg_path), "--dagster-home", str(tmp_path / "home"),
            "--release", "t1", "--allow-tiny"]
    result = CliRunner().invoke(main, [*args, "--workers", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    # o365: 6 images in shards of 4 -> 00000, 00001; oi: 5 images -> 00000, 00001.
    for source in ("o365", "oi"):
        for shard in ("00000", "00001"):
            images = store.read_table(f"assets/images/{source}/{shard}.parquet")
            objects = store.read_table(f"assets/objects/{source}/{shard}.parquet")
            quarantine = store.read_table(f"quarantine/{source}/{shard}.parquet")
            assert images.schema.equals(schemas.IMAGES)
            assert objects.schema.equals(schemas.OBJECTS)
            assert quarantine.schema.equals(schemas.QUARANTINE)
            assert images.num_rows > 0 and objects.num_rows > 0
            assert set(objects.column("image_id").to_pylist()) <= set(images.column("image_id").to_pylist())
            boxes = objects.column("bbox_1000").combine_chunks().flatten().to_numpy()
            assert boxes.min() >= 0 and boxes.max() <= 1000
            assert all(u.startswith((store.root, "s3://", "file://"))
                       for u in images.column("image_uri").to_pylist())
    o365_images = pa.concat_tables(
        [store.read_table(f"assets/images/o365/{s}.parquet") for s in ("00000", "00001")])
    assert o365_images.num_rows == 6
    assert all(o365_images.column("depth_uri").to_pylist())  # given depth carried through
    assert store.exists("release/t1/manifest.json")

    # The S3 secret never reaches the run logs, event metadata, manifest or card.
    import dagster as dg
    from dagster._serdes import serialize_value

    from sf_platform_tests.conftest import S3_SECRET

    instance = dg.DagsterInstance.get()
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id):
            assert S3_SECRET not in serialize_value(record)
    for key in ("release/t1/manifest.json", "release/t1/README.md"):
        assert S3_SECRET not in store.read_text(key)
    assert S3_SECRET not in result.output

    # The release re-exports and reports its counts through the CLI.
    exported = CliRunner().invoke(main, ["export", "--release", "t1", "--format", "internvl",
                                         "--out", str(tmp_path / "exports"), "--config", str(cfg_path)],
                                  catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    assert exported.output.count("exports/internvl/") >= 6
    stats = CliRunner().invoke(main, ["stats", "t1", "--config", str(cfg_path)], catch_exceptions=False)
    assert stats.exit_code == 0 and "grounding" in stats.output

    # The quality report regenerates for the release and, on demand, for one partition.
    rep = CliRunner().invoke(main, ["report", "t1", "--config", str(cfg_path)], catch_exceptions=False)
    assert rep.exit_code == 0, rep.output
    assert store.exists("release/t1/quality/index.html")
    part = CliRunner().invoke(main, ["report", "--partition", "o365/00000", "--config", str(cfg_path)],
                              catch_exceptions=False)
    assert part.exit_code == 0, part.output
    assert store.exists("reports/o365/00000/index.html")
    assert "grounding" in store.read_text("reports/o365/00000/index.html")

    if not store.is_s3:  # `validate` reads a local Parquet file or folder
        folder = Path(store.root[len("file://"):]) / "release/t1/data/grounding"
        ok = CliRunner().invoke(main, ["validate", str(folder)], catch_exceptions=False)
        assert ok.exit_code == 0, ok.output
        table = pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("*.parquet"))])
        objs = table.column("objects").to_pylist()
        objs[0][0]["bbox_1000"] = [5, 5, 1200, 900]  # off the [0,1000] grid
        bad = table.set_column(table.schema.get_field_index("objects"), "objects",
                               pa.array(objs, type=table.schema.field("objects").type))
        pq.write_table(bad, tmp_path / "bad.parquet")
        failed = CliRunner().invoke(main, ["validate", str(tmp_path / "bad.parquet")])
        assert failed.exit_code == 1
        assert "bbox_1000_in_grid" in failed.output

    # A second run finds nothing changed and skips every shard.
    again = CliRunner().invoke(main, args[:-3], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "[plan] 4 shard(s) up to date, 0 to run" in again.output

    # A changed counting-only threshold re-runs qa_counting only: no GPU op, no other task.
    # (The runs execute in worker processes: the change must be in the config they load.)
    def materializations(name: str) -> int:
        return len(instance.fetch_materializations(dg.AssetKey(name), limit=1000).records)

    before = {n: materializations(n) for n in ("depth", "scene", "qa_counting", "qa_near_far")}
    cfg_path.write_text(yaml.safe_dump({**config, "qa": {"count_max_bin_ratio": 4.0}}))
    third = CliRunner().invoke(main, args[:-3], catch_exceptions=False)
    assert third.exit_code == 0, third.output
    assert "[plan] 4 shard(s): qa_counting" in third.output
    after = {n: materializations(n) for n in before}
    assert after["qa_counting"] == before["qa_counting"] + 4
    assert after["depth"] == before["depth"] and after["scene"] == before["scene"]
    assert after["qa_near_far"] == before["qa_near_far"]


def test_run_rejects_a_bad_config_clearly(tmp_path):
    cfg_path = tmp_path / "sources.yaml"
    cfg_path.write_text("sources:\n  - {name: a, format: objects365, images: nowhere}\n")
    result = CliRunner().invoke(main, ["run", "--config", str(cfg_path)])
    assert result.exit_code != 0
    assert "needs 'annotations'" in result.output
