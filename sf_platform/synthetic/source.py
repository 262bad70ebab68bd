"""The ``synthetic`` source: scenes generated once into the configured folder, safely under
concurrent callers (a file lock, and a parameters marker written last)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from sf_platform.synthetic.render import GENERATOR_VERSION, SyntheticPaths, generate, paths_of

MARKER = "_synthetic.json"
DEFAULT_NUM_IMAGES = 24


def ensure_generated(src) -> SyntheticPaths:
    """Generate the ``synthetic`` source ``src`` once (``src.images`` is the output folder).

    Idempotent: a marker JSON records the parameters and is written last; the scenes are
    regenerated only when it is missing (an interrupted run) or its parameters differ.  A file
    lock makes concurrent callers (Dagster's multiprocess executor) generate once.
    ``src.rotated_every = k`` stores every k-th photo rotated with an EXIF tag (0: none).
    """
    if src.format != "synthetic":
        raise ValueError(f"source {src.name!r} has format {src.format!r}, not 'synthetic'")
    if "://" in src.images and not src.images.startswith("file://"):
        raise ValueError(
            f"synthetic source {src.name!r}: images must be a local folder, got {src.images!r}"
        )
    out = Path(src.images.removeprefix("file://"))
    rotated_every = int(src.rotated_every)
    params = {
        "generator_version": GENERATOR_VERSION,
        "num_images": int(src.num_images or DEFAULT_NUM_IMAGES),
        "seed": int(src.seed),
        "width": 640,
        "height": 480,
        "rotated_every": rotated_every,
    }
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists() and json.loads(marker.read_text()) == params:
                return paths_of(out)
            if marker.exists():
                marker.unlink()
            paths = generate(
                out,
                params["num_images"],
                params["seed"],
                params["width"],
                params["height"],
                rotated_every,
            )
            tmp = out / f".{MARKER}.tmp"
            tmp.write_text(json.dumps(params, sort_keys=True))
            os.replace(tmp, marker)
            return paths
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
