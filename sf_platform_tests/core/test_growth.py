from sf_platform.core.growth import plan_growth


def test_first_look_indexes_then_runs_every_shard():
    plan = plan_growth({"a": "fp1"}, {"a": None}, {})
    assert plan.reindex == ["a"] and plan.shards_to_run == []
    # Asking again before the index exists does not request a second index run.
    again = plan_growth({"a": "fp1"}, {"a": None}, plan.cursor)
    assert again.reindex == []
    plan2 = plan_growth({"a": "fp1"}, {"a": ("fp1", {"00000": "h0", "00001": "h1"})}, plan.cursor)
    assert plan2.new_shards == ["a/00000", "a/00001"] and plan2.reindex == []


def test_growth_runs_only_new_and_changed_shards():
    cursor = plan_growth({"a": "fp1"}, {"a": ("fp1", {"00000": "h0", "00001": "h1"})}, {}).cursor
    # The source grew: its files changed, so it is re-indexed first.
    plan = plan_growth({"a": "fp2"}, {"a": ("fp1", {"00000": "h0", "00001": "h1"})}, cursor)
    assert plan.reindex == ["a"] and plan.shards_to_run == []
    # After re-indexing: shard 1 gained images, shard 2 is new, shard 0 is untouched.
    plan = plan_growth({"a": "fp2"}, {"a": ("fp2", {"00000": "h0", "00001": "h1b", "00002": "h2"})}, plan.cursor)
    assert plan.new_shards == ["a/00002"]
    assert plan.changed_shards == ["a/00001"]
    assert plan.digests["a/00001"] == "h1b"
    # Nothing changed: nothing to do.
    quiet = plan_growth({"a": "fp2"}, {"a": ("fp2", {"00000": "h0", "00001": "h1b", "00002": "h2"})}, plan.cursor)
    assert quiet.reindex == [] and quiet.shards_to_run == []
