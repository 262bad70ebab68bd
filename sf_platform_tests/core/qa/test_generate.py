import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform.core import schemas
from sf_platform.core.qa.generate import TASK_CODE_VERSIONS, generate_task, generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.checks import check_relation_answers, check_table
from sf_platform_tests.core.qa.scenes import design_example, obj, random_scene, scene, shuffled

S = QASettings()


@pytest.fixture(scope="module")
def base():
    sc = random_scene(250, seed=21)
    return sc, generate_tasks(sc, S)


def parquet_bytes(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="zstd")
    return buf.getvalue()


@pytest.mark.parametrize("seed", [1, 2])
def test_byte_identical_whatever_the_input_order(base, seed):
    sc, out = base
    for task in schemas.TASKS:
        again = generate_task(task, shuffled(sc, seed), S)
        assert again.equals(out[task]), task
        assert parquet_bytes(again) == parquet_bytes(out[task]), task


def test_shards_are_independent(base):
    """A shard's table does not depend on what else is generated in the same process."""
    sc, _out = base
    first_images = sc.filter(pa.compute.less(sc.column("image_id"), "000100"))
    alone = generate_task("near_far", first_images, S)
    ids_alone = set(alone.column("qa_id").to_pylist())
    assert ids_alone and generate_task("near_far", first_images, S).equals(alone)


def test_every_table_follows_the_schema_and_its_rules(base):
    _, out = base
    for task, table in out.items():
        assert table.num_rows > 20, task
        if task in ("near_far", "left_right", "perspective"):
            check_relation_answers(table, task)
        else:
            check_table(table, task)
        image_prefix = {}
        for qa_id, image_id in zip(
            table.column("qa_id").to_pylist(), table.column("image_id").to_pylist()
        ):
            assert image_prefix.setdefault(image_id, qa_id[:8]) == qa_id[:8]


def test_seed_changes_sampling_not_content_rules(base):
    sc, out = base
    other = generate_task("near_far", sc, QASettings(seed=1))
    assert not other.equals(out["near_far"])
    check_relation_answers(other, "near_far")


def test_code_versions_cover_every_task():
    assert set(TASK_CODE_VERSIONS) == set(schemas.TASKS)
    assert all(isinstance(v, str) and v for v in TASK_CODE_VERSIONS.values())


def test_empty_scene_gives_empty_tables():
    for task, table in generate_tasks(schemas.empty(schemas.SCENE), S).items():
        assert table.num_rows == 0 and table.schema.equals(schemas.QA), task


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="unknown QA task"):
        generate_task("depth_estimation", design_example(), S)
    dup = scene({"i": [obj(1, "Chair", (0, 0, 10, 10)), obj(1, "Dog", (20, 0, 30, 10))]})
    with pytest.raises(ValueError, match="duplicate objects"):
        generate_task("grounding", dup, S)


def test_missing_optional_columns_fail_closed():
    """A scene without depth/facing columns still gives 2D tasks, and no depth/person questions."""
    sc = design_example().drop_columns(
        ["depth_median", "depth_kind", "depth_reliable", "facing", "facing_confidence"]
    )
    out = generate_tasks(sc, S)
    assert out["near_far"].num_rows == 0 and out["perspective"].num_rows == 0
    assert out["left_right"].num_rows > 0 and out["grounding"].num_rows > 0
