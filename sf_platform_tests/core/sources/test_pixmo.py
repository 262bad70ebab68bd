import pytest

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.sources.index import build_index
from sf_platform.core.sources.pixmo import extension_from_url

from .helpers import PIXMO_COUNT, PIXMO_PARTS, read_all, reasons

A, B, C, D, E = ("a" * 63 + "1", "b" * 63 + "2", "c" * 63 + "3", "d" * 63 + "4", "e" * 63 + "5")


def _index(store, annotations, shard_size=2):
    src = SourceConfig(
        name="px",
        format="pixmo",
        images="/data/px",
        annotations=str(annotations),
        shard_size=shard_size,
    )
    return build_index(src, store, S3Config()), read_all(store, "px")


def test_extension_from_url():
    assert extension_from_url("https://x.org/a/b.PNG?size=1") == ".png"
    assert extension_from_url("https://x.org/a/noext") == ".jpg"
    assert extension_from_url("https://x.org/a/page.html") == ".jpg"
    assert extension_from_url(None) == ".jpg"


def test_rows_of_one_image_merge_and_points_become_objects(file_store):
    summary, shard = _index(file_store, PIXMO_PARTS)
    images = {i["image_id"]: i for i in shard.images.to_pylist()}
    assert list(images) == [A, B, C, D, E]  # first appearance, across both parts
    assert images[A]["file_name"] == A + ".png"
    assert images[B]["file_name"] == B + ".jpg"
    assert images[C]["file_name"] == C + ".jpeg"
    assert images[E]["file_name"] == E + ".gif"
    # First non-null count wins; the part without a count column leaves E without one.
    assert (images[A]["count"], images[A]["count_label"]) == (2, "apple")
    assert (images[B]["count"], images[B]["count_label"]) == (0, "cat")
    assert images[E]["count"] is None
    assert images[A]["width"] is None
    objs = {o["object_id"]: o for o in shard.objects.to_pylist()}
    a_objs = [o for o in shard.objects.to_pylist() if o["image_id"] == A]
    assert [(o["object_id"], o["category"]) for o in a_objs] == [
        (f"{A}-0", "apple"),
        (f"{A}-1", "apple"),
        (f"{A}-2", "mug"),
        (f"{A}-3", "plate"),
    ]
    assert objs[f"{A}-1"]["points"] == [{"x": 30.5, "y": 40.25}]
    assert objs[f"{A}-1"]["bbox_px"] is None and objs[f"{A}-1"]["bbox_norm"] is None
    assert objs[f"{A}-1"]["provenance"] == "points"
    r = reasons(shard.quarantine)
    assert r == {f"{C}-0": "nan_point", f"{D}-0": "unknown_category"}
    assert objs[f"{C}-1"]["points"] == [{"x": 12.0, "y": 13.0}]
    assert summary.num_objects == 6


def test_single_file_with_count_column(file_store):
    _, shard = _index(file_store, PIXMO_COUNT)
    assert shard.images.column("image_id").to_pylist() == [A, B, C, D]
    assert shard.images.column("count").to_pylist() == [2, 0, 2, 1]
    assert shard.images.column("count_label").to_pylist()[3] is None  # blank label


def test_not_a_pixmo_file(file_store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"image_url": ["u"]}), path)
    with pytest.raises(ValueError, match="missing columns"):
        _index(file_store, path)
