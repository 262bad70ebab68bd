"""Source readers (Objects365, OpenImages, PixMo, COCO keypoints, synthetic) and the shard index.

Public entry points live in :mod:`sf_platform.core.sources.index`: ``build_index``,
``load_index_summary``, ``read_shard``, ``source_fingerprint``.
"""
