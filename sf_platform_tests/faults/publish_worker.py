"""One release attempt in its own process, for the kill and race tests.

``python -m sf_platform_tests.faults.publish_worker ROOT VERSION MARKER [--endpoint URL]
[--go FILE] [--slow SECONDS]``: waits for ``--go`` to exist (so racing workers start
together), writes a quality page naming ``MARKER`` into its staging prefix (what the release
asset does before ``build_release``), then builds and publishes the release of every QA table
under ``assets/``.  ``--slow`` sleeps before every store write, copy and create (a slow
network), so a test can kill it at a chosen point.  Prints ``TOKEN <token>``; exits 0 when
it published, 3 when it lost the version to another run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from sf_platform.core import release
from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release_inputs import qa_keys_by_task
from sf_platform.storage.object_store import ObjectStore
from sf_platform.storage.publish import new_staging
from sf_platform_tests.release.inputs import TERMS

PROVENANCE = {"profile": "real", "models": {}, "code_versions": {}}


def _slow_down(seconds: float) -> None:
    for name in ("write_bytes", "create_bytes", "copy"):
        real = getattr(ObjectStore, name)

        def slow(self, *a, _real=real):
            time.sleep(seconds)
            return _real(self, *a)

        setattr(ObjectStore, name, slow)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("version")
    ap.add_argument("marker")
    ap.add_argument("--endpoint")
    ap.add_argument("--go")
    ap.add_argument("--slow", type=float, default=0.0)
    ap.add_argument("--lease", type=float, default=300.0)
    args = ap.parse_args()
    store = ObjectStore(root=args.root, endpoint_url=args.endpoint)
    keys = qa_keys_by_task(store)
    staging = new_staging(store, args.version)
    print("TOKEN", staging.token, flush=True)
    while args.go and not os.path.exists(args.go):
        time.sleep(0.01)
    if args.slow:
        _slow_down(args.slow)
    store.write_text(staging.key("quality/index.html"), f"<html>report of {args.marker}</html>")
    try:
        release.build_release(store, args.version, keys, PROVENANCE, QASettings(), sources=TERMS, staging=staging,
                              lease_s=args.lease)
    except release.ReleaseConflict as exc:
        print("CONFLICT", exc, flush=True)
        return 3
    print("PUBLISHED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
