"""``sf-platform evaluate``: model-made relation facts checked against the source's given data."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from sf_platform import synthetic
from sf_platform.cli import main
from sf_platform.config import parse_config
from sf_platform.core import fact_eval
from sf_platform.evaluate import (
    EvaluationError,
    _scenes,
    evaluate,
    model_depth_runner,
    model_pose_runner,
    write_evaluation,
)
from sf_platform.storage.object_store import store_for


def config_dict(root, paths, **qa):
    return {
        "storage": str(root / "store"),
        "sources": [{"name": "syn", "format": "objects365", "images": paths.images_dir,
                     "annotations": paths.annotations, "depth": paths.depth_dir,
                     "keypoints": paths.keypoints, "shard_size": 100}],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}},
        **({"qa": qa} if qa else {}),
    }


def given_depth(_images, depth):
    """A depth runner that returns the given depth maps (a perfect model)."""
    return depth


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    paths = synthetic.generate(root / "syn", num_images=40, seed=21)
    cfg = parse_config(config_dict(root, paths))
    store = store_for(cfg)
    tiny = _scenes(cfg.sources[0], cfg, store, 40, model_depth_runner(cfg), model_pose_runner(cfg))
    return root, paths, cfg, store, tiny


def _rows(summary, task, bucket):
    return next(r for r in summary.to_pylist() if r["task"] == task and r["bucket"] == bucket)


def test_tiny_models_make_many_wrong_facts_and_the_report_says_so(setup):
    _, _, cfg, store, (given, model, n) = setup
    records = fact_eval.compare_facts(given, model, cfg.qa)
    checked = [r for r in records if r["checkable"] and r["task"] in ("near_far", "perspective")]
    assert n == 40 and len(checked) >= 10
    assert sum(r["contradicted"] for r in checked) / len(checked) >= 0.25  # random weights: ~coin flips
    summary = fact_eval.summarize(records)
    assert sum(r["contradicted"] for r in summary.to_pylist() if r["bucket"] != "published") == sum(
        r["contradicted"] for r in records)
    ev = evaluate(cfg, store, max_images=40)  # the whole command path, tiny models
    wrong = sum(r["contradicted"] for r in ev.summary.to_pylist() if r["bucket"] != "published")
    assert wrong == sum(r["contradicted"] for r in records)
    key = write_evaluation(store, ev, "tiny")
    page = store.read_text(key)
    assert "near_far" in page and "contradicted" in page and "tiny (random weights)" in page
    doc = json.loads(store.read_text(key.replace("index.html", "evaluation.json")))
    assert doc["rows"] == ev.summary.to_pylist()
    assert "| near_far | <1 |" in ev.markdown


def test_a_depth_runner_returning_the_given_depth_is_never_contradicted(setup):
    _, _, cfg, store, _ = setup
    ev = evaluate(cfg, store, max_images=40, depth_runner=given_depth, with_pose=False)
    rows = ev.summary.to_pylist()
    assert all(r["contradicted"] == 0 for r in rows)
    assert _rows(ev.summary, "near_far", "published")["checkable"] > 0
    assert _rows(ev.summary, "perspective", "published")["checkable"] > 0
    assert all(r["error_rate"] in (0.0, None) for r in rows)


def test_margins_in_config_change_the_figures(setup):
    _, _, cfg, _, (given, model, _) = setup
    loose, strict = cfg.qa.model_copy(update={"left_right_margin": 0.02}), cfg.qa.model_copy(
        update={"left_right_margin": 0.2, "near_far_disparity_margin": 0.6})
    a = fact_eval.summarize(fact_eval.compare_facts(given, model, loose))
    b = fact_eval.summarize(fact_eval.compare_facts(given, model, strict))
    # a larger margin moves facts below it (<1) and publishes fewer
    assert _rows(b, "left_right", "<1")["facts"] > _rows(a, "left_right", "<1")["facts"]
    assert _rows(b, "left_right", "published")["facts"] < _rows(a, "left_right", "published")["facts"]
    assert _rows(b, "near_far", "published")["facts"] <= _rows(a, "near_far", "published")["facts"]
    # the same model facts are bucketed, only differently
    total = lambda s, t: sum(r["facts"] for r in s.to_pylist() if r["task"] == t and r["bucket"] != "published")
    assert total(a, "left_right") == total(b, "left_right") > 0
    # with a perfect depth model, a larger log margin publishes fewer near_far facts, none wrong
    perfect = _scenes(cfg.sources[0], cfg, setup[3], 40, given_depth, None)
    lo = fact_eval.summarize(fact_eval.compare_facts(perfect[0], perfect[1], cfg.qa))
    hi = fact_eval.summarize(fact_eval.compare_facts(
        perfect[0], perfect[1], cfg.qa.model_copy(update={"near_far_log_margin": 0.6})))
    assert _rows(hi, "near_far", "published")["facts"] < _rows(lo, "near_far", "published")["facts"]
    assert _rows(hi, "near_far", "<1")["facts"] > _rows(lo, "near_far", "<1")["facts"]


def test_cli_prints_the_table_and_writes_the_page(setup, tmp_path):
    root, paths, _, _, _ = setup
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(config_dict(root, paths)))
    res = CliRunner().invoke(main, ["evaluate", "--config", str(cfg_path), "--max-images", "8", "--no-pose",
                                    "--name", "cli"])
    assert res.exit_code == 0, res.output
    assert "| task | margin / threshold | model facts |" in res.output
    assert res.output.strip().splitlines()[-1].endswith("reports/evaluate/cli/index.html")
    assert (root / "store" / "reports" / "evaluate" / "cli" / "index.html").exists()


def test_a_source_without_given_depth_is_refused(setup, tmp_path):
    root, paths, _, _, _ = setup
    d = config_dict(root, paths)
    del d["sources"][0]["depth"]
    cfg = parse_config(d)
    with pytest.raises(EvaluationError, match="given depth"):
        evaluate(cfg, store_for(cfg))
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    res = CliRunner().invoke(main, ["evaluate", "--config", str(cfg_path), "--source", "syn"])
    assert res.exit_code != 0 and "no image with a given depth map" in res.output
