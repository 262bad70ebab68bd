"""The release as a Hugging Face dataset: default config ``all``, one config per task, a
validation split by image, declared features, and licences derived from the rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sf_platform.config import ReleaseSettings
from sf_platform.core.licenses import SourceTerms
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.release.inputs import TERMS, build, local_root, put_inputs


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---", 2)[1])


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hf")
    store = ObjectStore(root=f"file://{tmp}/store")
    keys = put_inputs(store)
    summary = build(store, "v1", keys, ReleaseSettings(validation_fraction=0.2))
    # datasets caches a local folder by its name and card, not its path: a private cache
    cache = str(tmp / "hf_cache")
    return store, keys, summary, local_root(store, "v1"), cache


def _images(ds) -> set:
    return set(zip(ds["source"], ds["image_id"]))


def test_default_config_has_every_task_and_splits_share_no_image(released):
    store, _keys, summary, root, cache = released
    ds = datasets.load_dataset(root, cache_dir=cache)  # no config name: the card's default, "all"
    assert set(ds) == {"train", "validation"}
    assert sum(d.num_rows for d in ds.values()) == summary["total"]
    tasks = {t for t, n in summary["totals"].items() if n}
    assert set(ds["train"].unique("task")) == tasks and len(tasks) >= 5
    train, val = _images(ds["train"]), _images(ds["validation"])
    assert train and val and not (train & val)
    assert 0.08 <= len(val) / len(train | val) <= 0.35  # validation_fraction 0.2 of ~90 images
    meta = front_matter(store.read_text("release/v1/README.md"))
    declared = datasets.Features._from_yaml_list(meta["dataset_info"][0]["features"])
    assert meta["configs"][0]["config_name"] == "all" and meta["configs"][0]["default"] is True
    assert declared == ds["train"].features


def test_each_task_config_loads_its_own_rows(released):
    _store, _keys, summary, root, cache = released
    for task, n in summary["totals"].items():
        if not n:
            continue
        ds = datasets.load_dataset(root, task, cache_dir=cache)
        assert sum(d.num_rows for d in ds.values()) == n
        assert {t for d in ds.values() for t in d.unique("task")} == {task}
        assert sum(ds[s].num_rows for s in ds) == sum(summary["splits"][task].values())


def test_split_is_a_function_of_the_image(released):
    """Another release of the same rows (and a differently sized one) puts each image on the
    same side: the split is by image hash, not by row order or count."""
    store, keys, _summary, _root, _cache = released
    build(store, "v1b", {t: k[:2] for t, k in keys.items()}, ReleaseSettings(validation_fraction=0.2))

    def sides(version: str) -> dict:
        out = {}
        for p in Path(local_root(store, version), "data").rglob("*.parquet"):
            t = pq.read_table(p, columns=["source", "image_id"])
            for key in zip(t.column("source").to_pylist(), t.column("image_id").to_pylist()):
                out.setdefault(key, set()).add(p.name.split("-")[0].split(".")[0])
        return out

    a, b = sides("v1"), sides("v1b")
    assert all(len(v) == 1 for v in a.values())
    assert all(a[k] == v for k, v in b.items())


def test_licences_come_from_the_rows(tmp_path):
    store = ObjectStore(root=f"file://{tmp_path}/store")
    keys = put_inputs(store)
    oi_ids = sorted({i for k in keys["grounding"] if "/openimages/" in k
                     for i in store.read_table(k, columns=["image_id"]).column("image_id").to_pylist()})
    listed = oi_ids[: len(oi_ids) // 2]
    csv_path = tmp_path / "oi-images-with-rotation.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License", "AuthorProfileURL",
                    "Author", "Title", "OriginalSize", "OriginalMD5", "Thumbnail300KURL", "Rotation"])
        for i in listed:
            w.writerow([i, "validation", f"https://farm.example/{i}.jpg", "", "https://creativecommons.org/licenses/by/2.0/",
                        "", f"Author {i}", "", "1", "x", "", "0"])
        w.writerow(["not-in-release", "validation", "u", "", "https://creativecommons.org/licenses/by/2.0/",
                    "", "A", "", "1", "x", "", "0"])
    terms = {**TERMS, "openimages": SourceTerms("openimages", "openimages", "cc-by-2.0", "https://oi.example",
                                               str(csv_path))}
    build(store, "L1", keys, sources=terms)
    rows = pa.concat_tables([pq.read_table(p) for p in
                             sorted((tmp_path / "store/release/L1/data").rglob("*.parquet"))])
    for r in rows.select(["source", "image_id", "license", "image_author", "image_source_url"]).to_pylist():
        assert r["license"] == {"o365": "cc-by-4.0", "openimages": "cc-by-2.0"}[r["source"]]
        given = r["source"] == "openimages" and r["image_id"] in listed
        assert (r["image_author"] == f"Author {r['image_id']}") if given else r["image_author"] is None
        assert (r["image_source_url"] is not None) == given
    card = store.read_text("release/L1/README.md")
    assert front_matter(card)["license"] == ["cc-by-2.0", "cc-by-4.0"]
    assert "This release mixes 2 image licences" in card
    assert "to-be-decided" not in card and "placeholder" not in card and "license: other" not in card
    man = json.loads(store.read_text("release/L1/manifest.json"))
    assert sum(c["rows"] for c in man["licenses"].values()) == rows.num_rows
    assert man["image_roots"]["openimages"] == {"path": "openimages/", "origin": "https://oi.example",
                                                "license": "cc-by-2.0"}
    # One source only: one licence, no mixing statement.
    single = build(store, "L2", {t: [k for k in v if "/o365/" in k] for t, v in keys.items()})
    card = store.read_text("release/L2/README.md")
    assert front_matter(card)["license"] == "cc-by-4.0" and "mixes" not in card and single["total"] > 0
