"""The publish lease lock: one holder; released, expired or dead holders are taken over."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sf_platform.storage.lock import LeaseLock, LockHeld

PREFIX = "release/.locks/v1"


def test_one_holder_at_a_time_and_release_frees_it(store):
    a = LeaseLock(store, PREFIX).acquire()
    with pytest.raises(LockHeld, match="held by pid"):
        LeaseLock(store, PREFIX).acquire()
    a.check()  # still ours
    first = a.generation
    a.release()
    with LeaseLock(store, PREFIX) as b:
        assert b.generation == first + 1
        assert len(store.list(PREFIX)) == 1  # earlier generations cleaned up
        with pytest.raises(LockHeld):
            a.check()  # a no longer holds it


def test_an_expired_lease_is_taken_over_and_the_old_holder_notices(store):
    old = LeaseLock(store, PREFIX, lease_s=3.0).acquire()
    with pytest.raises(LockHeld):
        LeaseLock(store, PREFIX).acquire()
    time.sleep(3.1)
    new = LeaseLock(store, PREFIX).acquire()
    with pytest.raises(LockHeld, match="lease lost"):
        old.check()
    old.release()  # releasing a lost lock leaves the new holder's record alone
    with pytest.raises(LockHeld):
        LeaseLock(store, PREFIX).acquire()
    new.release()


def test_a_holder_killed_on_this_host_is_detected_at_once(file_store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    lock = LeaseLock(file_store, PREFIX).acquire()
    rec = json.loads(file_store.read_text(f"{PREFIX}/{lock.generation:08d}.json"))
    rec["pid"] = int(dead.stdout)  # the record of a process that no longer exists, lease still valid
    file_store.write_text(f"{PREFIX}/{lock.generation:08d}.json", json.dumps(rec))
    assert LeaseLock(file_store, PREFIX).acquire().generation == lock.generation + 1
