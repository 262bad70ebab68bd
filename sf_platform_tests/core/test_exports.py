import json

import pytest

from sf_platform.core import exports
from sf_platform.core.qa.generate import generate_task, generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.scenes import design_example, random_scene

S = QASettings(max_category_share=1.0)


@pytest.fixture(scope="module")
def example():
    return generate_tasks(design_example(), S)


def test_qwen_single_turn_record(example):
    t = example["near_far"]
    recs = list(exports.to_qwen(t))
    assert len(recs) == t.num_rows
    row = t.to_pylist()[0]
    r = recs[0]
    assert set(r) == {"id", "image", "conversations"}
    assert r["id"] == row["qa_id"]
    assert r["image"] == "o365/images/000123.jpg"
    assert r["conversations"] == [
        {"from": "human", "value": "<image>\n" + row["question"]},
        {"from": "gpt", "value": row["answer"]},
    ]


def test_internvl_adds_size_and_ref_box_tags(example):
    t = example["referring"]
    for row, r in zip(t.to_pylist(), exports.to_internvl(t)):
        assert (r["width"], r["height"]) == (800, 600)
        q = r["conversations"][0]["value"]
        box = ", ".join(map(str, row["objects"][0]["bbox_1000"]))
        assert f"<box>[[{box}]]</box>" in q and f"[{box}]" not in q.replace("[[", "")
    g = example["grounding"]
    for row, r in zip(g.to_pylist(), exports.to_internvl(g)):
        q, ans = r["conversations"][0]["value"], r["conversations"][1]["value"]
        assert "JSON" not in q and q.startswith("<image>\nPlease provide the bounding box")
        assert ("<ref>every chair</ref>" in q) == (len(row["objects"]) > 1)
        boxes = ", ".join("[" + ", ".join(map(str, o["bbox_1000"])) + "]" for o in row["objects"])
        assert ans.startswith("<ref>") and ans.endswith(f"</ref><box>[{boxes}]</box>")


def test_internvl_named_boxes():
    text = "From the viewpoint of the person at [1, 2, 3, 4], is the chair at [10, 20, 30, 40] on their left?"
    assert exports.internvl_text(text) == (
        "From the viewpoint of <ref>the person</ref><box>[[1, 2, 3, 4]]</box>, "
        "is <ref>the chair</ref><box>[[10, 20, 30, 40]]</box> on their left?"
    )
    assert (
        exports.internvl_text("The dining table at [5, 6, 7, 8].")
        == "<ref>The dining table</ref><box>[[5, 6, 7, 8]]</box>."
    )


def test_multi_turn_packs_one_image_with_image_token_once():
    qa = generate_task("left_right", random_scene(40, seed=1), S)
    per_image = {}
    for iid in qa.column("image_id").to_pylist():
        per_image[iid] = per_image.get(iid, 0) + 1
    for fn in (exports.to_qwen, exports.to_llava, exports.to_internvl):
        recs = list(fn(qa, multi_turn=True, max_turns=3))
        turns = sum(len(r["conversations"]) // 2 for r in recs)
        assert turns == qa.num_rows
        assert len(recs) == sum(-(-n // 3) for n in per_image.values())
        for r in recs:
            conv = r["conversations"]
            assert 1 <= len(conv) // 2 <= 3
            assert [c["from"] for c in conv] == ["human", "gpt"] * (len(conv) // 2)
            assert conv[0]["value"].startswith("<image>\n")
            assert sum(c["value"].count("<image>") for c in conv) == 1
        assert len({r["id"] for r in recs}) == len(recs)


def test_jsonl_round_trips_and_unknown_format_fails(example):
    data = exports.jsonl(exports.to_llava(example["counting"]))
    lines = data.decode().splitlines()
    assert [json.loads(x)["id"] for x in lines] == example["counting"].column("qa_id").to_pylist()
    with pytest.raises(ValueError, match="unknown export format"):
        list(exports._records(example["counting"], "sharegpt", False, 6))
