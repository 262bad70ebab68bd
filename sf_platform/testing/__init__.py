"""Test-data builders that the tests and the benchmarks share (never imported by the pipeline).

- :mod:`sf_platform.testing.qa_tables`: consistent QA, scene and curated-images tables of any
  size, built columnar (the quality tests break one thing at a time on top of them; the
  validation benchmark times the gate on a million rows).

The synthetic scene generator, which the demo uses too, is :mod:`sf_platform.synthetic`.
"""
