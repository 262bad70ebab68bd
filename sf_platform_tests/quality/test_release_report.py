import pyarrow as pa
import pytest

from sf_platform.core.release_inputs import collect_funnel
from sf_platform.quality.release_report import partition_keys, partition_of


def test_partition_keys_match_exactly_and_need_a_source():
    keys = {"grounding": ["assets/qa_grounding/a/00001.parquet", "assets/qa_grounding/xa/00001.parquet",
                          "assets/qa_grounding/a/000011.parquet"]}
    assert partition_keys(keys, "a/00001") == {"grounding": ["assets/qa_grounding/a/00001.parquet"]}
    assert partition_of("assets/qa_grounding/xa/00001.parquet") == "xa/00001"
    with pytest.raises(ValueError, match="<source>/<shard>"):
        partition_keys(keys, "00001")


def test_funnel_of_one_partition(file_store):
    for source, n in (("a", 3), ("b", 5)):
        file_store.write_table(f"assets/images/{source}/00000.parquet", pa.table({"x": list(range(n))}))
    file_store.write_table("quarantine/b/00000.parquet",
                           pa.table({"kind": ["image"], "reason": ["truncated_image"]}))
    assert collect_funnel(file_store)["curated"] == 8
    one = collect_funnel(file_store, "a/00000")
    assert one["curated"] == 3 and one["images"] == 3 and one["dropped"] == {}
    assert collect_funnel(file_store, "b/00000")["dropped"] == {"image:truncated_image": 1}
