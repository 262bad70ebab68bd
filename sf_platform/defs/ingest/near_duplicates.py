"""The ``near_duplicates`` asset: near-duplicate images over every source and shard.

Unpartitioned, downstream of every ``images`` partition: it reads only their ``phash`` column
(curation hashed each image while decoding it, so no image is read again), groups hashes at
most ``qa.near_duplicate_max_hamming`` bits apart, and writes one ``near_duplicate`` row per
dropped image naming the kept one (:mod:`sf_platform.core.near_duplicates`).  The release
reads this table and leaves those images' QA rows out.  Materialize it after the shards and
before the release (the lead wires it into the jobs / automation).
"""

import dagster as dg

from sf_platform.core.near_duplicates import ASSET, find_near_duplicates, read_image_hashes
from sf_platform.defs.resources import PlatformResource


@dg.asset(
    name=ASSET,
    group_name="ingest",
    deps=["images"],
    code_version="1",
    description="Images whose perceptual hash is within qa.near_duplicate_max_hamming bits of a "
    "kept image (any source or shard): reason near_duplicate, naming the kept image; the "
    "release leaves their QA out.",
)
def near_duplicates(context: dg.AssetExecutionContext, platform: PlatformResource):
    cfg = platform.load()
    hashes = read_image_hashes(platform.store())
    table = find_near_duplicates(hashes, cfg.qa.near_duplicate_max_hamming)
    unhashed = hashes.column("phash").null_count
    yield dg.Output(
        table,
        metadata={
            "images": dg.MetadataValue.int(hashes.num_rows),
            "unhashed_images": dg.MetadataValue.int(unhashed),
            "near_duplicates": dg.MetadataValue.int(table.num_rows),
            "max_hamming": dg.MetadataValue.int(cfg.qa.near_duplicate_max_hamming),
        },
    )


__all__ = ["near_duplicates"]
