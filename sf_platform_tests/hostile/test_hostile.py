"""Hostile inputs, one case each (see corpus.py and CASES.md): the exact outcome, and no wrong
fact published (nothing rejected reaches the curated tables; every published box lies in its
image, every name is clean, no detail echoes a file's content)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sf_platform.config import S3Config
from sf_platform.core.curation import curate_shard
from sf_platform.core.sources.index import build_index, load_index_summary, read_shard
from sf_platform_tests.hostile.corpus import (
    CASES,
    CASES_MD,
    Corpus,
    Kept,
    Quarantined,
    Raises,
    Warns,
    cases_markdown,
)

pytestmark = pytest.mark.hostile


def _run(case, tmp_path, store):
    corpus = Corpus(tmp_path)
    case.mutate(corpus)
    src = corpus.write()
    summary = build_index(src, store, S3Config())
    parts = [read_shard(store, src.name, k, summary) for k in sorted(summary.shards)]
    curated = [curate_shard(p.images, p.objects, p.quarantine, summary.images_root) for p in parts]
    return (
        load_index_summary(store, src.name),
        pa.concat_tables([c.images for c in curated]),
        pa.concat_tables([c.objects for c in curated]),
        pa.concat_tables([c.quarantine for c in curated]),
    )


def _published_facts_are_sane(images: pa.Table, objects: pa.Table, quarantine: pa.Table) -> None:
    size = {r["image_id"]: (r["width"], r["height"]) for r in images.to_pylist()}
    for o in objects.to_pylist():
        w, h = size[o["image_id"]]
        if o["bbox_px"] is not None:
            x1, y1, x2, y2 = o["bbox_px"]
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, o
        name = o["category"]
        assert name and name == " ".join(name.split()) and name.isprintable(), name
        assert not set(name) & set('<>"`\u202e\u200b'), name
    for d in quarantine.column("detail").to_pylist():
        assert "root:x" not in d and "<html" not in d, d
    for u in quarantine.column("image_uri").to_pylist():
        assert u is None or "://" in u, u


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, file_store):
    raises = [e for e in case.expect if isinstance(e, Raises)]
    if raises:
        with pytest.raises(Exception) as info:
            _run(case, tmp_path, file_store)
        assert type(info.value).__name__ == raises[0].error, info.value
        for needle in raises[0].names:
            assert needle in str(info.value), (needle, str(info.value))
        return
    summary, images, objects, quarantine = _run(case, tmp_path, file_store)
    _published_facts_are_sane(images, objects, quarantine)
    rows = quarantine.to_pylist()
    kept_images = set(images.column("image_id").to_pylist())
    kept_objects = {o["object_id"]: o for o in objects.to_pylist()}
    for e in case.expect:
        if isinstance(e, Quarantined):
            field = "image_id" if e.kind == "image" else "object_id"
            got = {(r["kind"], r["reason"]) for r in rows if r[field] == e.key}
            assert (e.kind, e.reason) in got, (e, rows)
            if e.first_entry_kept:
                continue
            if e.kind == "image":  # neither the image nor any of its objects is published
                assert e.key not in kept_images
                assert e.key not in set(objects.column("image_id").to_pylist())
            elif e.kind == "object":
                assert e.key not in kept_objects
            else:
                assert all(o["keypoints"] is None for o in kept_objects.values())
        elif isinstance(e, Kept):
            obj = kept_objects[e.object_id]
            for column, want in e.values:
                got = obj["keypoints"] is not None if column == "has_keypoints" else obj[column]
                assert got == want, (column, got, want)
            image = next(r for r in images.to_pylist() if r["image_id"] == obj["image_id"])
            for column, want in e.image:
                assert image[column] == want, (column, image[column], want)
        elif isinstance(e, Warns):
            assert any(e.text in w for w in summary.warnings), summary.warnings


def test_cases_md_is_generated_from_the_case_list():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert CASES_MD.read_text() == cases_markdown(), (
        "run: python -m sf_platform_tests.hostile.corpus"
    )
