"""Ingest: a source's annotation index, then per shard the curated images/objects/quarantine."""


import dagster as dg

from sf_platform.core.curation import curate_shard
from sf_platform.core.sources.index import build_index, load_index_summary, read_shard
from sf_platform.defs.metadata import plain, reason_counts
from sf_platform.defs.partitions import shards, sources, split_shard_key
from sf_platform.defs.resources import PlatformResource

INGEST_CODE_VERSION = "1"


@dg.asset(
    partitions_def=sources,
    group_name="ingest",
    code_version=INGEST_CODE_VERSION,
    description="Streams a source's annotations once into a shard-addressable index "
    "(<root>/sources/<name>/index/); shards are fixed-size slices of its image list.",
)
def source_index(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    cfg = platform.load()
    src = cfg.source(context.partition_key)
    summary = build_index(src, platform.store(), cfg.s3)
    return dg.MaterializeResult(
        metadata=plain(
            {
                "format": summary.format,
                "images": summary.num_images,
                "objects": summary.num_objects,
                "quarantined": summary.num_quarantined,
                "shards": len(summary.shards),
                "fingerprint": summary.fingerprint,
            }
        ),
        data_version=dg.DataVersion(summary.fingerprint),
    )


@dg.multi_asset(
    partitions_def=shards,
    group_name="ingest",
    outs={
        "images": dg.AssetOut(
            code_version=INGEST_CODE_VERSION,
            description="Curated images: decoded, EXIF-oriented true width/height, sha256.",
        ),
        "objects": dg.AssetOut(
            code_version=INGEST_CODE_VERSION,
            description="Annotated objects in the oriented frame, boxes in pixels and [0,1000].",
        ),
        "quarantine": dg.AssetOut(
            code_version=INGEST_CODE_VERSION,
            metadata={"storage_prefix": "quarantine"},
            description="Rejected images/objects/depth maps with a reason code and a sentence.",
        ),
    },
)
def curated(context: dg.AssetExecutionContext, platform: PlatformResource):
    """Reads one shard from the source index and curates it (bad inputs quarantined, not lost)."""
    cfg = platform.load()
    store = platform.store()
    source, shard = split_shard_key(context.partition_key)
    src = cfg.source(source)
    summary = load_index_summary(store, source)
    if summary is None or shard not in summary.shards:
        raise dg.Failure(
            f"shard {context.partition_key} is not in the index of source {source!r}: "
            "materialize source_index for it first (sf-platform run does)"
        )
    raw = read_shard(store, source, shard, summary=summary)
    # The index records where file names are relative to (for synthetic sources that is the
    # generator's images/ folder, not the configured output folder).
    cur = curate_shard(
        raw.images, raw.objects, raw.quarantine, summary.images_root or src.images, cfg.s3,
        src.annotation_frame, gives_depth=src.gives_depth, depth_unit=src.depth_unit,
    )
    shard_hash = summary.shards[shard]
    common = {"shard_hash": dg.MetadataValue.text(shard_hash)}
    yield dg.Output(
        cur.images,
        output_name="images",
        data_version=dg.DataVersion(shard_hash),
        metadata={**common, "raw_images": dg.MetadataValue.int(raw.images.num_rows)},
    )
    yield dg.Output(cur.objects, output_name="objects", data_version=dg.DataVersion(shard_hash), metadata=common)
    yield dg.Output(
        cur.quarantine,
        output_name="quarantine",
        data_version=dg.DataVersion(shard_hash),
        metadata={**common, "reasons": dg.MetadataValue.json(reason_counts(cur.quarantine))},
    )
