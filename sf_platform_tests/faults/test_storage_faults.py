"""S3 faults between the platform and its store: 5xx, SlowDown, dropped connections, lost replies.

The store goes through :class:`FaultProxy` (in front of the moto endpoint); what is checked
afterwards is read directly from moto.  Writes must ride out transient faults (retried with
backoff), and when storage fails for good nothing may be partial at a final key.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pytest

from sf_platform.core import release
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release_inputs import qa_keys_by_task
from sf_platform.storage.object_store import ObjectStore
from sf_platform.storage.publish import release_state
from sf_platform_tests.faults.publish_worker import PROVENANCE
from sf_platform_tests.faults.test_publish_kill_and_race import put_inputs
from sf_platform_tests.release.inputs import TERMS

pytestmark = pytest.mark.faults


def direct(proxied: ObjectStore, s3_endpoint: str) -> ObjectStore:
    """The same bucket and prefix, straight to moto (what a reader sees)."""
    return ObjectStore(root=proxied.root, endpoint_url=s3_endpoint)


def test_writes_and_reads_ride_out_5xx_slowdown_and_dropped_connections(proxied_store, fault_proxy, s3_endpoint):
    fault_proxy.configure(seed=7, error_share=0.12, slowdown_share=0.12, drop_share=0.12)
    tables = {f"assets/t/src/{i:05d}.parquet": pa.table({"x": list(range(i * 100, i * 100 + 50))}) for i in range(6)}
    for key, table in tables.items():
        proxied_store.write_table(key, table)
    for key, table in tables.items():
        assert proxied_store.read_table(key).equals(table)
    assert proxied_store.list("assets/t", ".parquet") == sorted(tables)
    for kind in ("500", "503", "drop"):
        assert fault_proxy.counts[kind] >= 1, fault_proxy.counts  # every kind was injected and survived
    moto = direct(proxied_store, s3_endpoint)
    assert all(moto.read_table(k).equals(t) for k, t in tables.items())


def test_a_write_that_finally_fails_leaves_nothing_at_its_key(fault_proxy, s3_bucket, s3_endpoint):
    store = ObjectStore(root=f"s3://{s3_bucket}/sf", endpoint_url=fault_proxy.url, max_attempts=3)
    fault_proxy.configure(fail_after=0, methods=("PUT", "POST"))
    with pytest.raises(OSError):
        store.write_table("assets/t/src/00000.parquet", pa.table({"x": [1, 2, 3]}))
    assert 3 <= fault_proxy.counts["500"] <= 6  # retried (botocore max_attempts, s3fs on top), then gave up
    assert not direct(store, s3_endpoint).exists("assets/t/src/00000.parquet")


def test_publish_that_dies_mid_copy_is_not_published_and_completes_later(fault_proxy, s3_bucket, s3_endpoint):
    store = ObjectStore(root=f"s3://{s3_bucket}/sf", endpoint_url=fault_proxy.url, max_attempts=2)
    moto = direct(store, s3_endpoint)
    put_inputs(moto, shards=2)
    keys = qa_keys_by_task(moto)
    # every request to the final keys fails after the first few copies: storage gone mid-publish
    fault_proxy.configure(path_filter="/release/v1/", methods=("PUT",), fail_after=3)
    with pytest.raises(OSError):
        release.build_release(store, "v1", keys, PROVENANCE, QASettings(), sources=TERMS)
    state = release_state(moto, "v1")
    assert not state.published and state.partial_files >= 1
    with pytest.raises(release.ReleaseError, match="interrupted publish"):
        release.read_manifest(moto, "v1")
    fault_proxy.configure(fail_after=None)  # storage back
    release.build_release(store, "v1", keys, PROVENANCE, QASettings(), sources=TERMS)
    man = json.loads(moto.read_text("release/v1/manifest.json"))
    for f in man["files"]:
        assert hashlib.sha256(moto.read_bytes(f"release/v1/{f['path']}")).hexdigest() == f["sha256"]
    assert moto.list("release/.staging") == []


def test_a_lost_reply_to_the_manifest_put_is_not_mistaken_for_a_lost_race(proxied_store, fault_proxy, s3_endpoint):
    """The conditional PUT lands, its reply is dropped, the retry answers 412: the publisher
    recognises its own manifest (its token) and succeeds."""
    moto = direct(proxied_store, s3_endpoint)
    put_inputs(moto, shards=1)
    fault_proxy.configure(path_filter="/release/v1/manifest.json", methods=("PUT",), lost_reply_share=1.0,
                          max_faults=1)
    summary = release.build_release(proxied_store, "v1", qa_keys_by_task(moto), PROVENANCE, QASettings(),
                                    sources=TERMS)
    assert fault_proxy.counts["lost_reply"] == 1
    assert json.loads(moto.read_text(summary["manifest"]))["version"] == "v1"
