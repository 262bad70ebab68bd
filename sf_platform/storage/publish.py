"""Publishing a release: staged writes, one exclusive publish, the manifest as the marker.

DESIGN amendment "Release publish": everything a release holds is written under its own
staging prefix (``release/.staging/<version>-<token>/``, :func:`new_staging`), where no reader
looks.  :func:`publish` then makes it appear at ``release/<version>/`` and writes
``manifest.json`` last, with a create-if-absent; a version without its manifest does not exist
for readers (:func:`release_state` tells them why).

Placing the files, per backend:

- ``file://``: the staged folder is renamed into place (``rename(2)``: one atomic step), then
  the manifest is created with ``link(2)``, which fails if it exists.
- S3 has no rename.  Each staged object is server-side copied to its final key (no bytes
  through this process), then the manifest is PUT with ``If-None-Match: *`` (supported by AWS
  since 2024, by MinIO, and by moto >= 5.0, which the tests run against).  A conditional PUT
  alone cannot make the *copies* exclusive -- two publishers would interleave their data
  before one of them lost the manifest -- so the whole placement runs under a lease lock
  (:class:`~sf_platform.storage.lock.LeaseLock`), on both backends alike.

Under the lock the publisher re-checks that no manifest exists, clears what a killed earlier
publish left at the final prefix (files without a manifest were never published), places its
files, and creates the manifest.  The loser -- of the lock, or of the manifest -- raises
:class:`PublishConflict` and has written nothing outside its own staging prefix, which it
discards.  The winner deletes its staging prefix and those of killed runs of the same version.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass

from sf_platform.storage import layout
from sf_platform.storage.lock import DEFAULT_LEASE_S, LeaseLock, LockHeld
from sf_platform.storage.object_store import ObjectStore


class PublishConflict(RuntimeError):
    """The version is published already, or another run is publishing it right now."""


class NotPublished(LookupError):
    """A reader asked for a version that has no manifest; the message says what is there."""


@dataclass(frozen=True)
class Staging:
    """Where one attempt writes its release before publishing it."""

    store: ObjectStore
    version: str
    token: str

    @property
    def prefix(self) -> str:
        return layout.release_staging_prefix(self.version, self.token)

    @property
    def final(self) -> str:
        return layout.release_prefix(self.version)

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"


def new_staging(store: ObjectStore, version: str) -> Staging:
    """A fresh staging prefix: time-ordered, unique per attempt (a UTC stamp + random hex)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return Staging(store, layout.check_version(version), f"{stamp}-{uuid.uuid4().hex[:8]}")


@dataclass(frozen=True)
class ReleaseState:
    version: str
    published: bool
    partial_files: int  # files at the final prefix (without a manifest: a killed publish)
    staged: tuple[str, ...]  # staging prefixes of this version (attempts in flight or killed)

    def describe(self, store: ObjectStore) -> str:
        if self.published:
            return f"release {self.version} is published ({store.uri(layout.release_manifest_key(self.version))})"
        what = []
        if self.partial_files:
            what.append(f"{self.partial_files} file(s) of an interrupted publish under "
                        f"{store.uri(layout.release_prefix(self.version))}")
        if self.staged:
            what.append(f"{len(self.staged)} staged attempt(s) under {store.uri(layout.release_staging_root())}")
        if not what:
            return f"release {self.version} does not exist in {store.root} (no manifest.json, nothing staged)"
        return (f"release {self.version} is not published: no manifest.json, only " + " and ".join(what)
                + f". It is ignored; re-run the release (sf-platform run --release {self.version}) to complete it.")


def _stagings(store: ObjectStore, version: str | None = None) -> dict[str, str]:
    """staging folder -> its version, for every (or one version's) staged attempt."""
    root = layout.release_staging_root()
    out = {}
    for key in store.list(root):
        folder = key[len(root) + 1:].split("/", 1)[0]
        try:
            v = layout.staging_version(folder)
        except layout.LayoutError:
            continue
        if version is None or v == version:
            out[f"{root}/{folder}"] = v
    return out


def release_state(store: ObjectStore, version: str) -> ReleaseState:
    published = store.exists(layout.release_manifest_key(version))
    partial = 0 if published else len(store.list(layout.release_prefix(version)))
    return ReleaseState(version, published, partial, tuple(sorted(_stagings(store, version))))


def require_published(store: ObjectStore, version: str) -> str:
    """The manifest key of a published ``version``; :class:`NotPublished` with the reason otherwise."""
    key = layout.release_manifest_key(version)
    if not store.exists(key):
        raise NotPublished(release_state(store, version).describe(store))
    return key


def published_versions(store: ObjectStore) -> list[str]:
    """Versions with a manifest (hidden staging and lock folders are never listed)."""
    out = []
    for key in store.list(layout.RELEASE, layout.MANIFEST):
        parts = key.split("/")
        if len(parts) == 3 and not parts[1].startswith("."):
            out.append(parts[1])
    return sorted(out)


def _place(staging: Staging, lock: LeaseLock) -> None:
    store = staging.store
    if store.is_s3:
        for key in store.list(staging.prefix):
            store.copy(key, f"{staging.final}/{key[len(staging.prefix) + 1:]}")
            lock.check()  # renews the lease; stops at once if another process took it over
    else:
        final = store._path(staging.final)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(store._path(staging.prefix), final)


def publish(staging: Staging, manifest: dict, lease_s: float = DEFAULT_LEASE_S) -> str:
    """Make ``staging`` the published release ``staging.version``; returns the manifest key.

    ``manifest`` gets ``publish_token`` (this attempt's token: how a retried conditional PUT
    recognises its own manifest) and ``published_at`` (UTC, ISO 8601; orders releases)."""
    store, version = staging.store, staging.version
    manifest = {**manifest, "publish_token": staging.token,
                "published_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")}
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    key = layout.release_manifest_key(version)
    lock = LeaseLock(store, layout.release_lock_prefix(version), lease_s)
    try:
        lock.acquire()
    except LockHeld as exc:
        discard(staging)
        raise PublishConflict(f"release {version} is being published by another run ({exc}); "
                              "this run wrote nothing outside its own staging prefix") from None
    try:
        if store.exists(key):
            raise PublishConflict(f"release {version} is already published ({store.uri(key)}); use a new version")
        store.delete(staging.final)  # a killed publish's files: never published, no manifest
        _place(staging, lock)
        lock.check()
        try:
            store.create_bytes(key, data)
        except FileExistsError:
            if store.read_bytes(key) != data:  # not our own retried PUT: someone else won
                raise PublishConflict(f"release {version} was published by another run ({store.uri(key)})") from None
    except PublishConflict:
        discard(staging)
        raise
    finally:
        lock.release()
    for prefix in _stagings(store, version):  # this attempt's leftovers (S3) and killed attempts'
        _remove(store, prefix)
    return key


def _remove(store: ObjectStore, prefix: str) -> None:
    """Best-effort removal of a staging prefix: another attempt at the same version may still
    be writing there (it can no longer publish, and discards its own staging when it fails),
    or be removing it at the same moment; neither may fail the run that published."""
    try:
        store.delete(prefix)
    except OSError:
        pass


def discard(staging: Staging) -> None:
    _remove(staging.store, staging.prefix)
