from sf_platform.core.rerun import Materialized, assets_to_run

VERSIONS = {"images": "1", "objects": "1", "scene": "1", "qa_counting": "2", "qa_near_far": "2"}
CHILDREN = {"images": {"scene"}, "objects": {"scene"}, "scene": {"qa_counting", "qa_near_far"}}


def _done(**overrides):
    latest = {
        "images": Materialized(10, "1", "h"),
        "objects": Materialized(11, "1"),
        "scene": Materialized(12, "1"),
        "qa_counting": Materialized(13, "2"),
        "qa_near_far": Materialized(14, "2"),
    }
    latest.update(overrides)
    return latest


def test_up_to_date_shard_runs_nothing():
    assert assets_to_run(_done(), VERSIONS, CHILDREN, "h") == set()


def test_new_content_or_no_curation_runs_everything():
    assert assets_to_run(_done(), VERSIONS, CHILDREN, "h2") == set(VERSIONS)
    assert assets_to_run(_done(images=None), VERSIONS, CHILDREN, "h") == set(VERSIONS)


def test_changed_template_reruns_that_task_only():
    versions = dict(VERSIONS, qa_counting="3")
    assert assets_to_run(_done(), versions, CHILDREN, "h") == {"qa_counting"}


def test_changed_scene_code_reruns_scene_and_its_tasks():
    versions = dict(VERSIONS, scene="2")
    assert assets_to_run(_done(), versions, CHILDREN, "h") == {"scene", "qa_counting", "qa_near_far"}


def test_qa_older_than_the_latest_curation_is_not_done():
    # The content changed, curation succeeded (new hash recorded), then a QA gate failed:
    # the QA table in the store still comes from the old content.
    latest = _done(images=Materialized(20, "1", "h"), objects=Materialized(21, "1"), scene=Materialized(22, "1"),
                   qa_near_far=Materialized(23, "2"))
    assert assets_to_run(latest, VERSIONS, CHILDREN, "h") == {"qa_counting"}


def test_never_materialized_new_asset_runs_alone():
    latest = _done(qa_near_far=None)
    assert assets_to_run(latest, VERSIONS, CHILDREN, "h") == {"qa_near_far"}
