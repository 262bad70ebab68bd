"""Ingest: a source's annotation index, each shard's content, and the curated tables per shard.

Lineage: ``source_index`` (one partition per source) → ``shard_content`` (one partition per
shard; external: nothing materializes it, the index *observes* it) → ``curated``.

``shard_content``'s data version is the shard's content hash, recorded by the index as an
observation.  That is what makes Dagster's own staleness right for sources: re-indexing a
source that grew observes the same hash for its untouched shards (their curated tables stay
fresh) and a new hash for the shards whose images or annotations changed (only those go
stale).  A direct ``source_index → curated`` edge could not say this: a source is one
partition, so every shard would go stale whenever any of it changed.
"""


import dagster as dg

from sf_platform.core.curation import curate_shard
from sf_platform.core.sources.index import build_index, load_index_summary, read_shard
from sf_platform.defs.metadata import plain, reason_counts
from sf_platform.defs.partitions import shard_key, shards, sources, split_shard_key
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.shard_runs import BACKFILL_POLICY, per_shard

# 2: images carry a perceptual hash (phash) for near-duplicate detection.
INGEST_CODE_VERSION = "2"
DATA_VERSION_TAG = "dagster/data_version"
INCOMPLETE_SHARDS = "incomplete_shards"  # images metadata: shards curated with missing images

shard_content = dg.AssetSpec(
    "shard_content",
    partitions_def=shards,
    group_name="ingest",
    deps=[dg.AssetDep("source_index", partition_mapping=dg.AllPartitionMapping())],
    description="A shard's slice of its source (images and annotations). Observed by "
    "source_index with the shard's content hash as its data version; curated reads it.",
)


@dg.asset(
    partitions_def=sources,
    group_name="ingest",
    code_version=INGEST_CODE_VERSION,
    description="Streams a source's annotations once into a shard-addressable index "
    "(<root>/sources/<name>/index/); shards are fixed-size slices of its image list. "
    "Registers the shards as partitions and observes each one's content hash.",
)
def source_index(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
    cfg = platform.load()
    src = cfg.source(context.partition_key)
    summary = build_index(src, platform.store(), cfg.s3)
    keys = {shard_key(src.name, shard): digest for shard, digest in sorted(summary.shards.items())}
    context.instance.add_dynamic_partitions(shards.name, list(keys))
    for key, digest in keys.items():
        context.log_event(dg.AssetObservation(asset_key=shard_content.key, partition=key,
                                              tags={DATA_VERSION_TAG: digest}))
    context.log.info(f"source_index {src.name}: {summary.num_images} images, "
                     f"{summary.num_objects} objects, {len(keys)} shards, "
                     f"{summary.num_quarantined} rows quarantined")
    for warning in summary.warnings:
        context.log.warning(f"source {src.name!r}: {warning}")
    return dg.MaterializeResult(
        metadata=plain(
            {
                "format": summary.format,
                "images": summary.num_images,
                "objects": summary.num_objects,
                "quarantined": summary.num_quarantined,
                "shards": len(summary.shards),
                "fingerprint": summary.fingerprint,
                "warnings": summary.warnings,
            }
        ),
    )


@dg.multi_asset(
    partitions_def=shards,
    group_name="ingest",
    deps=[shard_content.key],
    backfill_policy=BACKFILL_POLICY,
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
    """Reads each shard from its source's index and curates it (bad inputs quarantined)."""
    cfg = platform.load()
    store = platform.store()
    summaries: dict = {}
    out: dict[str, dict] = {"images": {}, "objects": {}, "quarantine": {}}
    raw_images = missing = 0
    incomplete: list[str] = []
    for key, _ in per_shard(context):
        source, shard = split_shard_key(key)
        src = cfg.source(source)
        if source not in summaries:
            summaries[source] = load_index_summary(store, source)
        summary = summaries[source]
        if summary is None or shard not in summary.shards:
            raise dg.Failure(
                f"shard {key} is not in the index of source {source!r}: "
                "materialize source_index for it first (sf-platform run does)"
            )
        raw = read_shard(store, source, shard, summary=summary)
        # The index records where file names are relative to (for synthetic sources that is
        # the generator's images/ folder, not the configured output folder).
        cur = curate_shard(raw.images, raw.objects, raw.quarantine,
                           summary.images_root or src.images, cfg.s3, src.annotation_frame,
                           gives_depth=src.gives_depth, depth_unit=src.depth_unit)
        raw_images += raw.images.num_rows
        missing += cur.missing_images
        if cur.missing_images:  # a shard whose every image is missing has already failed
            incomplete.append(key)
        out["images"][key], out["objects"][key], out["quarantine"][key] = (
            cur.images, cur.objects, cur.quarantine)
    kept = sum(t.num_rows for t in out["images"].values())
    context.log.info(f"curated {len(out['images'])} shard(s): {kept} of {raw_images} images kept, "
                     f"{sum(t.num_rows for t in out['objects'].values())} objects")
    reasons: dict[str, int] = {}
    for table in out["quarantine"].values():
        for reason, n in reason_counts(table).items():
            reasons[reason] = reasons.get(reason, 0) + n
    # Shards with missing images are listed, so the planner re-curates them on the next run
    # (the images may come back while the annotations, and so the content hash, stay the same).
    yield dg.Output(out["images"], output_name="images",
                    metadata={"raw_images": dg.MetadataValue.int(raw_images),
                              "missing_images": dg.MetadataValue.int(missing),
                              INCOMPLETE_SHARDS: dg.MetadataValue.json(incomplete)})
    yield dg.Output(out["objects"], output_name="objects")
    yield dg.Output(out["quarantine"], output_name="quarantine",
                    metadata={"reasons": dg.MetadataValue.json(dict(sorted(reasons.items())))})
