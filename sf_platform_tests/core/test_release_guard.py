"""A degraded release (a task shrank, images mostly quarantined) is refused unless allowed."""

from __future__ import annotations

import pytest

from sf_platform.config import ReleaseSettings
from sf_platform.core import release
from sf_platform.core.release_guard import ShrinkError, check_release_volume, previous_release
from sf_platform.core.release_inputs import qa_keys_by_task
from sf_platform_tests.core.test_release import REAL, S, put_inputs
from sf_platform_tests.release.inputs import TERMS

HEALTHY = {"images": 100, "curated": 98, "dropped": {"image:truncated_image": 2}}


def test_a_task_shrinking_below_the_floor_is_refused_unless_allowed(file_store):
    put_inputs(file_store)
    keys = qa_keys_by_task(file_store)
    release.build_release(file_store, "v1", keys, REAL, S, sources=TERMS)
    settings = ReleaseSettings()
    assert check_release_volume(file_store, "v2", keys, HEALTHY, settings) == []
    one_shard = {t: [k for k in ks if "/openimages/" in k] for t, ks in keys.items()}
    with pytest.raises(ShrinkError, match="near_far: .* pairs, .*% of the .* in release v1") as err:
        check_release_volume(file_store, "v2", one_shard, HEALTHY, settings)
    assert "--allow-shrink" in str(err.value)
    assert check_release_volume(file_store, "v2", one_shard, HEALTHY, settings, allow_shrink=True)
    assert check_release_volume(file_store, "v2", one_shard, HEALTHY, ReleaseSettings(allow_shrink=True))
    lenient = ReleaseSettings(min_task_share_of_previous=0.0)
    assert check_release_volume(file_store, "v2", one_shard, HEALTHY, lenient) == []


def test_mostly_quarantined_images_are_refused_even_without_a_previous_release(file_store):
    put_inputs(file_store)
    keys = qa_keys_by_task(file_store)
    gone = {"images": 100, "curated": 0, "dropped": {"image:missing_image": 100}}
    with pytest.raises(ShrinkError, match="100% of the 100 indexed images were quarantined"):
        check_release_volume(file_store, "v1", keys, gone, ReleaseSettings())
    assert check_release_volume(file_store, "v1", keys, gone, ReleaseSettings(max_quarantine_share=1.0)) == []


def test_previous_release_is_the_newest_published_one(file_store):
    put_inputs(file_store)
    keys = qa_keys_by_task(file_store)
    release.build_release(file_store, "b", keys, REAL, S, sources=TERMS)
    release.build_release(file_store, "a", {"near_far": keys["near_far"]}, REAL, S, sources=TERMS)
    file_store.write_text("release/c/README.md", "an interrupted publish: no manifest")
    assert previous_release(file_store, "z")["version"] == "a"
    assert previous_release(file_store, "a")["version"] == "b"
