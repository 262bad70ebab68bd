"""The demo's release, as a user gets it: portable (no path of the build machine in any file),
licensed, loadable with datasets, and exportable for the user's own image folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest
import yaml
from click.testing import CliRunner

from sf_platform.cli import main
from sf_platform_tests.release.test_trainer_formats import (
    LlavaLazySupervisedDataset,
    internvl_datasets,
)


@pytest.mark.slow
def test_demo_release_is_portable_licensed_and_loadable(tmp_path, monkeypatch):
    build = tmp_path / "build"
    monkeypatch.setenv("DAGSTER_HOME", str(build / "dagster_home"))  # restored after the test
    monkeypatch.setenv("SF_PLATFORM_CONFIG", str(build / "sources.yaml"))
    result = CliRunner().invoke(main, ["demo", "--dir", str(build)], catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    rel = build / "store/release/demo"
    assert (rel / "manifest.json").exists()

    # No machine path anywhere: every file of the release is scanned.
    needles = {str(build), os.path.realpath(build), str(tmp_path), "file://"}
    files = [p for p in rel.rglob("*") if p.is_file()]
    assert len(files) > 30
    for p in files:
        data = p.read_bytes()
        for n in needles:
            assert n.encode() not in data, f"{n!r} in {p.relative_to(rel)}"

    # Each source's image root is named once, in the manifest and the card.
    man = json.loads((rel / "manifest.json").read_text())
    cfg = yaml.safe_load((build / "sources.yaml").read_text())
    assert set(man["image_roots"]) == {s["name"] for s in cfg["sources"]}
    card = (rel / "README.md").read_text()
    for name, root in man["image_roots"].items():
        assert root["path"] == f"{name}/" and card.count(f"| {name} | `{name}/` |") == 1

    # Licences derived from the rows; OpenImages rows carry their author from the image CSV.
    meta = yaml.safe_load(card.split("---", 2)[1])
    assert meta["license"] == ["cc-by-2.0", "cc0-1.0", "odc-by"] and "mixes 3 image licences" in card
    cache = str(tmp_path / "hf")
    ds = datasets.load_dataset(str(rel), cache_dir=cache)
    oi = ds["train"].filter(lambda r: r["source"] == "oi")
    assert oi.num_rows and all(a and a.startswith("demo author") for a in oi["image_author"])
    assert set(ds["train"]["license"]) == {"cc-by-2.0", "cc0-1.0", "odc-by"}
    if "validation" in ds:
        train = set(zip(ds["train"]["source"], ds["train"]["image_id"]))
        assert not train & set(zip(ds["validation"]["source"], ds["validation"]["image_id"]))
    for task in man["counts"]:
        if sum(man["counts"][task].values()):
            assert datasets.load_dataset(str(rel), task, cache_dir=cache)["train"].unique("task") == [task]

    # Exports for the user's own image folder: one sub-folder per source.
    images = tmp_path / "my_images"
    images.mkdir()
    for s in cfg["sources"]:
        src_root = Path(s["images"]) / ("images" if s["format"] == "synthetic" else "")
        (images / s["name"]).symlink_to(src_root)
    out = tmp_path / "exports"
    for fmt in ("llava", "internvl"):
        ran = CliRunner().invoke(main, ["export", "--release", "demo", "--format", fmt, "--images-root", str(images),
                                        "--out", str(out), "--config", str(build / "sources.yaml")])
        assert ran.exit_code == 0, ran.output
    opened = 0
    for f in sorted((out / "exports/llava").glob("*.json")):
        reader = LlavaLazySupervisedDataset(str(f), "/nonexistent")  # absolute paths win the join
        for i in range(len(reader)):
            assert reader.list_data_dict[i]["image"].startswith(f"{images}/")
            reader[i]
            opened += 1
    assert opened == ds["train"].num_rows
    records = internvl_datasets(str(out / "exports/internvl/meta.json"))
    assert sum(map(len, records.values())) == ds["train"].num_rows
