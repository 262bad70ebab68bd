from pathlib import Path

import pytest

from sf_platform.config import ConfigError, load_config, parse_config


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sources.yaml"
    p.write_text(text)
    return p


def test_valid_config_resolves_relative_paths(tmp_path):
    (tmp_path / "o365").mkdir()
    (tmp_path / "o365" / "ann.json").write_text("{}")
    cfg = load_config(_write(tmp_path, """
storage: out
s3: {endpoint_url: http://127.0.0.1:9000}
sources:
  - name: o365_val
    format: objects365
    images: o365
    annotations: o365/ann.json
    shard_size: 500
"""))
    assert cfg.storage == "file://" + str((tmp_path / "out").resolve())
    src = cfg.source("o365_val")
    assert src.images == str((tmp_path / "o365").resolve())
    assert src.shard_size == 500 and src.annotation_frame == "raw"
    assert cfg.s3.endpoint_url == "http://127.0.0.1:9000"


def test_s3_storage_and_urls_are_kept(tmp_path):
    cfg = parse_config({"storage": "s3://bucket/prefix", "sources": [
        {"name": "oi", "format": "openimages", "images": "s3://b/img",
         "annotations": "s3://b/boxes.csv", "classes": "s3://b/classes.csv"}]}, base_dir=tmp_path)
    assert cfg.storage == "s3://bucket/prefix"
    assert cfg.sources[0].annotations == "s3://b/boxes.csv"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"storages": "x"}, "storages: unknown key"),
        ({"sources": [{"name": "a", "format": "coco", "images": "."}]}, "sources[0].format"),
        ({"sources": [{"name": "a", "format": "objects365", "images": "."}]}, "needs 'annotations'"),
        ({"sources": [{"name": "a", "format": "openimages", "images": ".", "annotations": "x.csv"}]}, "needs 'classes'"),
        ({"sources": [{"name": "a", "format": "synthetic", "images": ".", "shard_size": "big"}]}, "sources[0].shard_size"),
        ({"sources": [{"name": "a", "format": "synthetic", "images": ".", "colour": 1}]}, "sources[0].colour: unknown key"),
        ({"sources": [{"name": "a b", "format": "synthetic", "images": "."}]}, "sources[0].name"),
        ({"sources": [{"name": "a", "format": "synthetic", "images": "."}] * 2}, "must be unique"),
        ({"storage": "gs://bucket"}, "storage must be file://"),
        ({"models": {"profile": "huge"}}, "models.profile"),
        ({"models": {"depth": {"batch_size": 0}}}, "models.depth.batch_size"),
    ],
)
def test_every_mistake_is_named(tmp_path, data, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(data, base_dir=tmp_path)
    assert message in str(exc.value)


def test_missing_paths_are_listed(tmp_path):
    with pytest.raises(ConfigError) as exc:
        parse_config({"sources": [{"name": "a", "format": "objects365", "images": "nope",
                                   "annotations": "nope.json", "depth": "nodepth"}]}, base_dir=tmp_path)
    text = str(exc.value)
    for key in ("sources[0].images", "sources[0].annotations", "sources[0].depth"):
        assert key in text


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "sources: [unclosed"))


def test_depth_unit_and_policy(tmp_path):
    """depth_policy defaults to model when depth weights are configured, else skip; sources
    without given depth always use the model; misspelt values fail at load."""
    images = tmp_path / "img"
    images.mkdir()
    base = {"name": "rgbd", "format": "objects365", "images": str(images), "annotations": str(images),
            "depth": str(images)}
    plain = {"name": "plain", "format": "objects365", "images": str(images), "annotations": str(images)}
    cfg = parse_config({"sources": [base | {"depth_unit": "mm"}, plain]}, tmp_path)
    assert cfg.source("rgbd").depth_unit == "mm" and cfg.source("rgbd").gives_depth
    assert cfg.depth_policy("rgbd") == "model" and cfg.depth_policy("plain") == "model"  # default weights
    none = {"depth": {"model": None}}
    cfg = parse_config({"sources": [base, plain], "models": none}, tmp_path)
    assert cfg.depth_policy("rgbd") == "skip" and cfg.depth_policy("plain") == "model"
    cfg = parse_config({"sources": [base | {"depth_policy": "model"}], "models": none}, tmp_path)
    assert cfg.depth_policy("rgbd") == "model"
    assert parse_config({"sources": [base], "models": none | {"profile": "tiny"}}, tmp_path).depth_policy("rgbd") == "model"
    for key, value in (("depth_unit", "cm"), ("depth_policy", "guess")):
        with pytest.raises(ConfigError, match=f"sources\\[0\\].{key}"):
            parse_config({"sources": [base | {key: value}]}, tmp_path)
