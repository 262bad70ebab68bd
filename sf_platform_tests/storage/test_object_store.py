import pyarrow as pa
import pytest

from sf_platform.storage.object_store import ObjectStore


def test_table_roundtrip_and_listing(store: ObjectStore):
    t = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    uri = store.write_table("assets/images/src/00000.parquet", t)
    assert uri.endswith("assets/images/src/00000.parquet")
    assert store.read_table("assets/images/src/00000.parquet").equals(t)
    store.write_table("assets/images/src/00001.parquet", t)
    assert store.list("assets/images", ".parquet") == [
        "assets/images/src/00000.parquet",
        "assets/images/src/00001.parquet",
    ]
    assert store.read_tables(store.list("assets/images", ".parquet")).num_rows == 6


def test_failed_write_leaves_previous_version(store: ObjectStore, monkeypatch):
    """A write that dies half-way never replaces (or creates) the final key."""
    key = "assets/objects/src/00000.parquet"
    old = pa.table({"a": [1]})
    store.write_table(key, old)

    class Boom(RuntimeError):
        pass

    import pyarrow.parquet as pq

    def broken_write(table, where, **kw):
        where.write(b"PAR1 partial bytes")
        raise Boom("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(Boom):
        store.write_table(key, pa.table({"a": [2, 3]}))
    with pytest.raises(Boom):
        store.write_table("assets/objects/src/00001.parquet", pa.table({"a": [2, 3]}))
    monkeypatch.undo()
    assert store.read_table(key).equals(old)
    assert not store.exists("assets/objects/src/00001.parquet")
    assert store.list("assets/objects", "") == [key]  # no temp files left behind


def test_local_rename_failure_leaves_no_partial(file_store: ObjectStore, monkeypatch):
    import os

    def broken_replace(src, dst):
        raise OSError("crash before rename")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        file_store.write_bytes("a/b.bin", b"x" * 100)
    monkeypatch.undo()
    assert not file_store.exists("a/b.bin")
    assert file_store.list("a") == []


def test_repr_has_no_credentials(s3_store: ObjectStore):
    import os

    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in repr(s3_store)
