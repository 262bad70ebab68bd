"""Near-duplicate images: hashes made by curation, copies caught across sources and shards."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import skimage.data as sd
from PIL import Image

from sf_platform import synthetic
from sf_platform.core import schemas
from sf_platform.core.curation import curate_shard
from sf_platform.core.near_duplicates import (
    _band_pairs,
    drop_near_duplicates,
    find_near_duplicates,
    hamming,
    perceptual_hash,
)
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.release.inputs import TERMS

T = QASettings().near_duplicate_max_hamming
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "page", "coins", "gravel",
          "hubble_deep_field", "immunohistochemistry", "retina", "brick")  # distinct photos


def photo(name: str) -> Image.Image:
    a = np.asarray(getattr(sd, name)())
    if a.dtype != np.uint8:
        f = a.astype(np.float64)
        a = (255 * (f - f.min()) / max(np.ptp(f), 1e-9)).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def jpeg(im: Image.Image, quality: int = 90, exif_orientation: int | None = None) -> bytes:
    b = io.BytesIO()
    if exif_orientation:
        ex = Image.Exif()
        ex[0x0112] = exif_orientation
        im.save(b, "JPEG", quality=quality, exif=ex.tobytes())
    else:
        im.save(b, "JPEG", quality=quality)
    return b.getvalue()


def crop(im: Image.Image, frac: float) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * frac), int(h * frac), int(w * (1 - frac)), int(h * (1 - frac))))


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Two sources x two shards of curated images; copies planted across them.

    copy -> original: b/00000 astronaut_q40 (re-encoded) -> a/00000 astronaut;
    a/00001 coffee_half (resized) -> a/00000 coffee; b/00000 gravel_crop (1% cut from each side) ->
    a/00001 gravel; b/00001 chelsea_rot (stored rotated, EXIF tag 6) -> a/00000 chelsea;
    b/00001 camera_quarter (1/4 size, q70) -> a/00001 camera.
    """
    root = tmp_path_factory.mktemp("dups")
    ims = {n: photo(n) for n in PHOTOS}
    layout = {
        ("a", "00000"): {n: jpeg(ims[n]) for n in ("astronaut", "coffee", "chelsea", "rocket")},
        ("a", "00001"): {
            "camera": jpeg(ims["camera"]), "page": jpeg(ims["page"]), "gravel": jpeg(ims["gravel"]),
            "coffee_half": jpeg(ims["coffee"].resize((ims["coffee"].width // 2, ims["coffee"].height // 2))),
        },
        ("b", "00000"): {
            "astronaut_q40": jpeg(ims["astronaut"], 40), "gravel_crop": jpeg(crop(ims["gravel"], 0.01)),
            "coins": jpeg(ims["coins"]), "hubble": jpeg(ims["hubble_deep_field"]),
        },
        ("b", "00001"): {
            "chelsea_rot": jpeg(ims["chelsea"].transpose(Image.Transpose.ROTATE_90), exif_orientation=6),
            "camera_quarter": jpeg(ims["camera"].resize((ims["camera"].width // 4, ims["camera"].height // 4)), 70),
            "ihc": jpeg(ims["immunohistochemistry"]), "retina": jpeg(ims["retina"]), "brick": jpeg(ims["brick"]),
        },
    }
    tables = []
    for (source, shard), files in layout.items():
        folder = root / source
        folder.mkdir(exist_ok=True)
        rows = []
        for name, data in files.items():
            (folder / f"{name}.jpg").write_bytes(data)
            rows.append({"source": source, "shard": shard, "image_id": name, "file_name": f"{name}.jpg"})
        cur = curate_shard(pa.Table.from_pylist(rows, schema=schemas.RAW_IMAGES), schemas.empty(schemas.OBJECTS),
                           schemas.empty(schemas.QUARANTINE), str(folder))
        assert cur.images.num_rows == len(files) and cur.images.column("phash").null_count == 0
        tables.append(cur.images)
    return pa.concat_tables(tables)


EXPECTED = {
    "astronaut_q40": "astronaut", "coffee_half": "coffee", "gravel_crop": "gravel",
    "chelsea_rot": "chelsea", "camera_quarter": "camera",
}


def test_planted_copies_are_caught_across_sources_and_shards_and_distinct_photos_are_not(curated):
    dups = find_near_duplicates(curated, T)
    got = {r["image_id"]: r for r in dups.to_pylist()}
    assert set(got) == set(EXPECTED), {k: v["kept_image_id"] for k, v in got.items()}
    for copy, original in EXPECTED.items():
        r = got[copy]
        assert r["kept_image_id"] == original and r["reason"] == "near_duplicate" and r["kind"] == "image"
        assert r["kept_image_uri"] in r["detail"] and r["distance"] <= T
        assert r["image_uri"].startswith("file://")


def test_kept_image_is_deterministic_whatever_the_order(curated):
    a = find_near_duplicates(curated, T)
    shuffled = curated.take(pa.array(np.random.default_rng(1).permutation(curated.num_rows)))
    assert find_near_duplicates(shuffled, T).equals(a)


def test_their_qa_rows_are_dropped(curated):
    qa = pa.table({"source": ["a", "b", "b", "a"], "image_id": ["coffee", "astronaut_q40", "coins", "coffee_half"],
                   "x": [1, 2, 3, 4]})
    kept = drop_near_duplicates(qa, find_near_duplicates(curated, T))
    assert kept.column("x").to_pylist() == [1, 3]
    assert drop_near_duplicates(qa, None).equals(qa)


def test_rotated_copy_hashes_equal_in_the_oriented_frame():
    im = photo("chelsea")
    rotated = Image.open(io.BytesIO(jpeg(im.transpose(Image.Transpose.ROTATE_90), exif_orientation=6)))
    assert hamming(perceptual_hash(im), perceptual_hash(rotated, Image.Transpose.ROTATE_270)) <= 2
    assert hamming(perceptual_hash(im), perceptual_hash(rotated)) > T


def test_band_candidates_find_every_pair_within_the_threshold():
    rng = np.random.default_rng(0)
    base = rng.integers(-(2**63), 2**63 - 1, size=300, dtype=np.int64)
    flips = [np.int64(0)]
    copies = []
    for k, h in enumerate(base[:100]):  # a copy of each of the first 100 with k % (T + 3) bits flipped
        bits = rng.choice(64, size=k % (T + 3), replace=False)
        mask = np.bitwise_or.reduce(np.left_shift(np.uint64(1), bits.astype(np.uint64)), initial=np.uint64(0))
        copies.append((h.view(np.uint64) ^ mask).view(np.int64))
    h = np.r_[base, np.asarray(copies, dtype=np.int64)]
    i, j = _band_pairs(h, T)
    found = {(a, b) for a, b in zip(i, j) if hamming(h[a:a + 1], h[b:b + 1])[0] <= T}
    ii, jj = np.triu_indices(len(h), 1)
    brute = {(a, b) for a, b in zip(ii, jj) if hamming(h[a:a + 1], h[b:b + 1])[0] <= T}
    assert found == brute and len(brute) >= 70 and flips


def test_false_match_rate_on_synthetic_scenes_and_recall_on_copies(tmp_path):
    """The figures behind the default threshold (QASettings.near_duplicate_max_hamming)."""
    paths = synthetic.generate(tmp_path / "syn", 60, seed=3)
    files = sorted(p for p in (tmp_path / "syn").rglob("*.jpg"))
    assert len(files) >= 50
    hashes, copies = [], []
    for f in files:
        im = Image.open(f)
        im.draft(None, (max(im.width // 8, 1), max(im.height // 8, 1)))  # as curation decodes
        hashes.append(perceptual_hash(im))
        full = Image.open(f).convert("RGB")
        for c in (full.resize((full.width // 2, full.height // 2)), full):
            copies.append((len(hashes) - 1, perceptual_hash(Image.open(io.BytesIO(jpeg(c, 50))))))
    h = np.asarray(hashes, dtype=np.int64)
    i, j = np.triu_indices(len(h), 1)
    false_rate = float((hamming(h[i], h[j]) <= T).mean())
    recall = float(np.mean([hamming(h[k:k + 1], np.asarray([c]))[0] <= T for k, c in copies]))
    assert false_rate < 0.005 and recall == 1.0, (false_rate, recall)
    assert paths.images_dir


def test_release_leaves_out_the_qa_of_near_duplicate_images(file_store):
    from sf_platform.core import release
    from sf_platform.core.near_duplicates import ASSET, NEAR_DUPLICATES
    from sf_platform.storage.layout import asset_key
    from sf_platform_tests.core.test_release import REAL, S, put_inputs

    keys = put_inputs(file_store)
    gr = file_store.read_table(keys["grounding"][0])
    victim = gr.column("image_id")[0].as_py()
    row = {f.name: None for f in NEAR_DUPLICATES}
    row.update(source="o365", shard="00000", kind="image", image_id=victim, reason="near_duplicate")
    file_store.write_table(asset_key(ASSET), pa.Table.from_pylist([row], schema=NEAR_DUPLICATES))
    release.build_release(file_store, "v1", keys, REAL, S, sources=TERMS)
    released = [file_store.read_table(k) for k in file_store.list("release/v1/data/grounding", ".parquet")]
    data = pa.concat_tables(released)
    data = data.filter(pc.equal(data.column("source"), "o365"))
    o365 = pa.concat_tables([file_store.read_table(k) for k in keys["grounding"] if "/o365/" in k])
    ids = set(data.column("image_id").to_pylist())
    assert victim not in ids and ids == set(o365.column("image_id").to_pylist()) - {victim}
