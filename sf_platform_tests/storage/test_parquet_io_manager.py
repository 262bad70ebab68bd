"""The IO manager under the real Dagster executor, on file:// and on the S3 endpoint."""

import dagster as dg
import pyarrow as pa

from sf_platform.storage.parquet_io_manager import ParquetIOManager, table_key

parts = dg.DynamicPartitionsDefinition(name="shards")


@dg.asset(partitions_def=parts)
def numbers(context) -> pa.Table:
    return pa.table({"shard": [context.partition_key] * 3, "n": [1, 2, 3]})


@dg.asset(partitions_def=parts, metadata={"storage_prefix": "quarantine"})
def rejects(numbers: pa.Table) -> pa.Table:
    return numbers.slice(0, 1)


@dg.asset(partitions_def=parts)
def doubled(numbers: pa.Table) -> pa.Table:
    return numbers.set_column(1, "n", pa.array([2 * v for v in numbers.column("n").to_pylist()]))


@dg.asset
def not_a_table() -> dict:
    return {"a": 1}


def _run(store, assets, key=None):
    instance = dg.DagsterInstance.ephemeral()
    if key:
        instance.add_dynamic_partitions("shards", [key])
    io = ParquetIOManager(root=store.root, endpoint_url=store.endpoint_url)
    return dg.materialize(assets, partition_key=key, instance=instance, resources={"io_manager": io},
                          raise_on_error=False)


def test_keys_follow_the_design_layout():
    assert table_key("images", "o365/00042") == "assets/images/o365/00042.parquet"
    assert table_key("quarantine", "o365/00042", "quarantine") == "quarantine/o365/00042.parquet"
    assert table_key("release_summary", None) == "assets/release_summary.parquet"


def test_partitioned_tables_roundtrip(store):
    res = _run(store, [numbers, doubled, rejects], key="src/00007")
    assert res.success
    assert store.read_table("assets/numbers/src/00007.parquet").column("n").to_pylist() == [1, 2, 3]
    assert store.read_table("assets/doubled/src/00007.parquet").column("n").to_pylist() == [2, 4, 6]
    assert store.read_table("quarantine/src/00007.parquet").num_rows == 1
    mats = res.asset_materializations_for_node("numbers")
    assert mats[0].metadata["dagster/row_count"].value == 3


def test_refuses_non_tables(file_store):
    res = _run(file_store, [not_a_table])
    assert not res.success
    assert file_store.list("assets") == []
    err = next(e for e in res.all_events if e.is_step_failure).step_failure_data.error
    assert "never pickles" in str(err.cause.message if err.cause else err.message)


@dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.multi_run(8))
def per_shard_numbers(context) -> dict:
    return {k: pa.table({"shard": [k], "n": [i]}) for i, k in enumerate(context.partition_keys)}


@dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.multi_run(8))
def per_shard_copy(context, per_shard_numbers) -> dict:
    assert set(per_shard_numbers) == set(context.partition_keys)  # one table per shard, not a concat
    return dict(per_shard_numbers)


def test_a_run_over_a_range_writes_one_table_per_shard(store):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["s/00000", "s/00001", "s/00002"])
    io = ParquetIOManager(root=store.root, endpoint_url=store.endpoint_url)
    res = dg.materialize([per_shard_numbers, per_shard_copy], instance=instance, resources={"io_manager": io},
                         tags={"dagster/asset_partition_range_start": "s/00000",
                               "dagster/asset_partition_range_end": "s/00002"})
    assert res.success
    for key in ("s/00000", "s/00001", "s/00002"):
        assert store.read_table(f"assets/per_shard_copy/{key}.parquet").column("shard").to_pylist() == [key]
    mats = res.asset_materializations_for_node("per_shard_copy")
    assert {m.partition for m in mats} == {"s/00000", "s/00001", "s/00002"}
    assert mats[0].metadata["dagster/row_count"].value == 3
    assert [c.name for c in mats[0].metadata["dagster/column_schema"].value.columns] == ["shard", "n"]
