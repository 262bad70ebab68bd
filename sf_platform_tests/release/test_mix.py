"""Task mix: quotas and shares, deterministic sampling by qa_id hash, balance kept."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from sf_platform.config import ReleaseSettings, parse_config
from sf_platform.core.qa.balance import balance_report
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release import plan_release_mix
from sf_platform.core.release_mix import TaskMix, plan_mix, strata
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.release.inputs import build, put_inputs, shard_scene

S = QASettings()
# SpatialForge-10M's mix (grounding, referring, counting, near_far, left_right, perspective).
SPATIALFORGE = {"grounding": 3_600_000, "referring": 3_600_000, "counting": 495_000,
                "near_far": 2_600_000, "left_right": 93_000, "perspective": 8_000}


@pytest.fixture(scope="module")
def tables():
    out: dict[str, list[pa.Table]] = {}
    for i, (source, shard) in enumerate((("o365", "00000"), ("o365", "00001"), ("oi", "00000"), ("oi", "00001"))):
        for task, t in generate_tasks(shard_scene(60, 10 + i, source, shard), S).items():
            out.setdefault(task, []).append(t)
    return out


def _apply(plan, tables) -> dict[str, pa.Table]:
    return {t: pa.concat_tables([plan.apply(t, x) for x in ts]) for t, ts in tables.items()}


def test_quotas_are_met_deterministically_and_keep_balance(tables):
    avail = {t: sum(x.num_rows for x in ts) for t, ts in tables.items()}
    quotas = {"near_far": avail["near_far"] // 3, "left_right": avail["left_right"] // 2, "counting": 10**9}
    plan = plan_mix(TaskMix(quotas=quotas), tables)
    kept = _apply(plan, tables)
    assert kept["near_far"].num_rows == plan.delivered["near_far"] == quotas["near_far"]
    assert kept["left_right"].num_rows == quotas["left_right"]
    assert kept["counting"].num_rows == avail["counting"] == plan.delivered["counting"]  # short: all of it
    assert kept["grounding"].num_rows == avail["grounding"]  # not named: every row
    # Same plan from shuffled, re-chunked inputs: the same rows.
    rng = np.random.default_rng(0)
    shuffled = {t: [pa.concat_tables(ts).take(pa.array(rng.permutation(sum(x.num_rows for x in ts))))]
                for t, ts in tables.items()}
    again = _apply(plan_mix(TaskMix(quotas=quotas), shuffled), shuffled)
    for t in kept:
        assert sorted(again[t].column("qa_id").to_pylist()) == sorted(kept[t].column("qa_id").to_pylist())
    # Every balance stratum keeps its share to within one row.
    for t in ("near_far", "left_right"):
        before, after = Counter(strata(pa.concat_tables(tables[t]))), Counter(strata(kept[t]))
        frac = kept[t].num_rows / avail[t]
        assert all(abs(after[s] - frac * n) <= 1 for s, n in before.items())
        rb, ra = balance_report(pa.concat_tables(tables[t]), S), balance_report(kept[t], S)
        for key in ("yes_no", "first_mentioned_correct"):
            if rb[key]["rows"] >= 20:
                assert abs(ra[key]["share"] - rb[key]["share"]) <= 0.05 and ra[key]["within_band"]


def test_shares_without_total_give_the_largest_release_at_those_shares(tables):
    total = sum(SPATIALFORGE.values())
    mix = TaskMix(shares={t: n / total for t, n in SPATIALFORGE.items()})
    plan = plan_mix(mix, tables)
    n = sum(plan.delivered.values())
    assert n > 0 and any(plan.delivered[t] == plan.available[t] for t in plan.available)  # one task binds
    for t, want in SPATIALFORGE.items():
        assert abs(plan.delivered[t] - n * want / total) <= 1.5
    with_total = plan_mix(TaskMix(shares={"near_far": 0.5, "left_right": 0.5}, total=40), tables)
    assert with_total.delivered["near_far"] == with_total.delivered["left_right"] == 20
    assert with_total.delivered["grounding"] == 0


def test_bad_mixes_fail_when_the_config_loads():
    for bad, msg in (({"quotas": {"nearfar": 3}}, "unknown tasks"), ({"shares": {"near_far": 0.7}}, "sum to 1"),
                     ({"quotas": {"near_far": 1}, "shares": {"near_far": 1.0}}, "either"), ({}, "either")):
        with pytest.raises(ValidationError, match=msg):
            ReleaseSettings(mix=bad)
    cfg = parse_config({"release": {"mix": {"quotas": SPATIALFORGE}, "validation_fraction": 0.01}},
                       check_paths=False)
    assert cfg.release.mix.quotas["perspective"] == 8000


def test_release_reports_asked_against_delivered_and_audit_sees_the_sample(tmp_path):
    from sf_platform.quality.release_report import audit_release

    store = ObjectStore(root=f"file://{tmp_path}/store")
    keys = put_inputs(store)
    rs = ReleaseSettings(mix=TaskMix(quotas={"near_far": 40, "grounding": 30, "perspective": 10**6}))
    plan = plan_release_mix(store, keys, rs.mix)
    summary = build(store, "m1", keys, rs, mix_plan=plan)
    assert summary["totals"]["near_far"] == 40 and summary["totals"]["grounding"] == 30
    man = json.loads(store.read_text("release/m1/manifest.json"))
    assert man["mix"]["asked"]["near_far"] == 40 and man["mix"]["delivered"]["perspective"] < 10**6
    card = store.read_text("release/m1/README.md")
    line = next(x for x in card.splitlines() if x.startswith("| near_far |"))
    assert line.split("|")[3].strip() == "40" and line.split("|")[4].strip() == "40"
    assert "Short of the ask: perspective" in card
    with audit_release(store, {"near_far": keys["near_far"]}, S, select=plan.apply) as audit:  # GX is slow
        assert sum(audit.counts["near_far"].values()) == 40 and audit.validation["near_far"].rows == 40
