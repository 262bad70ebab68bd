"""Each trainer's own way of reading its data, run on a release's exports.

The readers below are written from the trainers' documented formats (STACK.md "What trainers
read"), not copied from their code: LLaVA's LazySupervisedDataset json.loads one file and
opens ``image_folder/<image>``; InternVL's fine-tuning reads a meta JSON naming ``root``,
``annotation`` (JSONL) and ``length`` per dataset; Qwen-VL trains on ``<image>``-tagged
conversations with boxes in [0, 1000] (Qwen3-VL) or absolute pixels (Qwen2.5-VL).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sf_platform.config import ReleaseSettings
from sf_platform.core import release
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.release.inputs import build, local_root, put_inputs

PART_CAP = 40_000  # bytes: small enough that some tasks are cut into parts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trainers")
    store = ObjectStore(root=f"file://{tmp}/store")
    keys = put_inputs(store)
    build(store, "v1", keys, ReleaseSettings(export_part_max_bytes=PART_CAP, validation_fraction=0.1))
    root = Path(local_root(store, "v1"))
    rows = pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet"))])
    images = tmp / "images"  # what a user downloads: one folder per source
    for ref, w, h in {(r["image_uri"], r["width"], r["height"]) for r in
                      rows.select(["image_uri", "width", "height"]).to_pylist()}:
        (images / ref).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (90, 120, 150)).save(images / ref)
    by_id = {r["qa_id"]: r for r in rows.to_pylist()}
    return store, root, images, by_id, tmp


class LlavaLazySupervisedDataset:
    """LLaVA's reading logic: one JSON array per file, images under ``image_folder``."""

    def __init__(self, data_path: str, image_folder: str):
        with open(data_path) as fh:
            self.list_data_dict = json.load(fh)
        self.image_folder = image_folder

    def __len__(self) -> int:
        return len(self.list_data_dict)

    def __getitem__(self, i: int) -> dict:
        item = self.list_data_dict[i]
        image = Image.open(os.path.join(self.image_folder, item["image"])).convert("RGB")
        conv = item["conversations"]
        assert [c["from"] for c in conv] == ["human", "gpt"] * (len(conv) // 2)
        assert conv[0]["value"].startswith("<image>\n")
        assert sum(c["value"].count("<image>") for c in conv) == 1
        return {"id": item["id"], "image": image, "conversations": conv}


def internvl_datasets(meta_path: str) -> dict[str, list[dict]]:
    """InternVL's meta reading: each dataset's JSONL under ``annotation``, images under
    ``root``; ``length`` must be the number of records."""
    with open(meta_path) as fh:
        meta = json.load(fh)
    out = {}
    for name, ds in meta.items():
        assert set(ds) >= {"root", "annotation", "data_augment", "repeat_time", "length"}
        with open(ds["annotation"]) as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        assert len(records) == ds["length"] and ds["repeat_time"] == 1
        for r in records:
            with Image.open(os.path.join(ds["root"], r["image"])) as im:
                assert im.size == (r["width"], r["height"])
        out[name] = records
    return out


def test_llava_reads_every_task_file_and_opens_its_images(built):
    _store, root, images, by_id, _ = built
    files = sorted((root / "exports/llava").glob("*.json"))
    assert any("-part-" in f.name for f in files), "the small cap should cut a task into parts"
    for f in files:
        m = re.fullmatch(r"([a-z_]+)(?:-part-(\d{5})-of-(\d{5}))?\.json", f.name)
        assert m, f.name
        if m.group(2):
            assert int(m.group(2)) < int(m.group(3)) and f.stat().st_size <= PART_CAP + 100
    seen = 0
    for f in files:
        ds = LlavaLazySupervisedDataset(str(f), str(images))
        for i in range(len(ds)):
            item = ds[i]
            row = by_id[item["id"]]
            assert item["image"].size == (row["width"], row["height"])
            assert item["conversations"][1]["value"] == row["answer"]
            seen += 1
    train = sum(pq.read_metadata(p).num_rows for p in (root / "data").rglob("train*.parquet"))
    assert seen == train  # the exports hold the whole train split, one record per pair


def test_internvl_meta_opens_root_and_annotation(built, monkeypatch):
    store, root, images, by_id, tmp = built
    (root / "images").symlink_to(images)  # the release's meta: run from it, images under images/
    monkeypatch.chdir(root)
    records = internvl_datasets("exports/internvl/meta.json")
    assert {n.split("_part")[0] for n in records} >= {"grounding", "near_far", "counting"}
    box = re.compile(r"<ref>([^<]+)</ref><box>\[\[(\d+), (\d+), (\d+), (\d+)\]\]</box>")
    checked = 0
    for recs in records.values():
        for r in recs:
            stored = {tuple(o["bbox_1000"]) for o in by_id[r["id"]]["objects"]}
            for m in box.finditer(r["conversations"][0]["value"]):
                assert tuple(int(v) for v in m.groups()[1:]) in stored
                checked += 1
    assert checked > 0
    # Re-exported for another machine's image folder: absolute root and annotation paths.
    out = ObjectStore(root=f"file://{tmp}/internvl_out")
    release.export_release(store, "v1", "internvl", out, images_root=str(images))
    monkeypatch.chdir(tmp)
    again = internvl_datasets(f"{tmp}/internvl_out/exports/internvl/meta.json")
    assert sum(map(len, again.values())) == sum(map(len, records.values()))
    meta = json.loads((tmp / "internvl_out/exports/internvl/meta.json").read_text())
    assert {m["root"] for m in meta.values()} == {str(images)}  # records stay <source>/<file_name>
    assert all(not r["image"].startswith("/") for recs in again.values() for r in recs)


@pytest.mark.parametrize("box_format", ["qwen3", "qwen25"])
def test_qwen_boxes_match_the_stored_boxes(built, box_format):
    store, _root, images, by_id, tmp = built
    out = ObjectStore(root=f"file://{tmp}/qwen_{box_format}")
    keys = release.export_release(store, "v1", "qwen", out, box_format=box_format)
    checked = 0
    for key in keys:
        for line in out.read_text(key).splitlines():
            r = json.loads(line)
            conv = r["conversations"]
            assert sum(c["value"].count("<image>") for c in conv) == 1
            row = by_id[r["id"]]
            if row["task"] != "grounding":
                continue
            with Image.open(images / r["image"]) as im:
                w, h = im.size  # the image as stored
            answer = json.loads(conv[1]["value"])
            for item, obj in zip(answer if isinstance(answer, list) else [answer], row["objects"]):
                got = item["bbox_2d"]
                if box_format == "qwen3":
                    assert got == obj["bbox_1000"]
                else:  # absolute pixels: the stored box scaled to the stored image, rounded
                    exact = [v * s / 1000 for v, s in zip(obj["bbox_1000"], (w, h, w, h))]
                    assert all(isinstance(v, int) and abs(v - e) <= 0.5 + 1e-9 for v, e in zip(got, exact))
                    assert 0 <= got[0] < got[2] <= w and 0 <= got[1] < got[3] <= h
                checked += 1
    assert checked > 0
