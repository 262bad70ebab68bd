"""How long the QA quality gate takes on a big table.

Builds a consistent QA table of ``--rows`` rows over all six tasks (plus its scene and curated
images tables) with the test factory, then times :func:`sf_platform.quality.suites.validate_qa`
(GX import and context start-up measured separately: they are paid once per process).  Wall
and CPU time are both printed: on a shared machine CPU time is the steadier figure.

    .venv/bin/python bench/validate.py --rows 1000000 [--no-scene] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

from machine import describe

os.environ["GX_ANALYTICS_ENABLED"] = "false"


def machine() -> str:
    return describe()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--per-image", type=int, default=2)
    ap.add_argument("--no-scene", action="store_true", help="validate without scene/images joins")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from sf_platform.core.qa.settings import QASettings
    from sf_platform.core.schemas import TASKS
    from sf_platform.quality import suites
    from sf_platform.quality.derived import derive
    from sf_platform.testing.qa_tables import allowed_answers, good_tables

    n_images = max(1, args.rows // (len(TASKS) * args.per_image))
    t = time.perf_counter()
    qa, scene, images = good_tables(n_images, args.per_image)
    print(f"machine: {machine()}")
    print(f"built {qa.num_rows:,} QA rows over {n_images:,} images in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"great_expectations import: {time.perf_counter() - t:.2f} s (once per process)")
    kw = {} if args.no_scene else {"scene": scene, "images": images}
    settings = QASettings()
    times = []
    for i in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        derived = derive(qa, settings, allowed_answers, expected_images=n_images, **kw)
        t_derive, c_derive = time.perf_counter() - t, time.process_time() - c
        del derived
        t, c = time.perf_counter(), time.process_time()
        report = suites.validate_qa(qa, settings, expected_images=n_images, allowed_answers=allowed_answers, **kw)
        total, cpu = time.perf_counter() - t, time.process_time() - c
        times.append((total, cpu))
        print(f"run {i + 1}: validate_qa {total:.2f} s wall / {cpu:.2f} s CPU (derive alone {t_derive:.2f} s wall / "
              f"{c_derive:.2f} s CPU), passed={report.passed}, {len(report.outcomes)} expectations, "
              f"{sum(o.skipped for o in report.outcomes)} skipped")
    best = min(times)
    print(f"best of {args.repeat}: {best[0]:.2f} s wall / {best[1]:.2f} s CPU for {qa.num_rows:,} rows "
          f"({'without' if args.no_scene else 'with'} scene/images)")


if __name__ == "__main__":
    main()
