"""Perception: the four GPU-tagged model assets and the per-object scene table.

Each model asset runs in the ``gpu`` concurrency pool and carries the ``dagster-k8s/config``
tag that asks Kubernetes for one ``nvidia.com/gpu`` (node selector and tolerations from the
``models.k8s`` config).  The ops themselves pick CUDA when present and fall back to CPU, and a
source that already provides the input (boxes, depth maps, keypoints) passes it through.
"""


import dagster as dg

from sf_platform.config import Config
from sf_platform.core.depth_io import read_depth_map
from sf_platform.core.scene import build_scene
from sf_platform.defs.gpu_tags import gpu_op_tags
from sf_platform.defs.metadata import plain
from sf_platform.defs.partitions import shards
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.shard_runs import BACKFILL_POLICY, per_shard
from sf_platform.models.depth import run_depth
from sf_platform.models.detection import run_detections
from sf_platform.models.inputs import ImageLoader
from sf_platform.models.masks import run_masks
from sf_platform.models.pose import run_poses

PERCEPTION_CODE_VERSION = "1"


def _image_loader(cfg: Config) -> ImageLoader:
    """Loads each image once, at the smallest JPEG scale the model input allows."""
    return ImageLoader(cfg.s3)


def _each_shard(context: dg.AssetExecutionContext, run_one, **inputs) -> dg.Output:
    """Run ``run_one({input: table}) -> (table, meta)`` on each shard of the step; one summary
    line in the run log; metadata of a single shard as is, of a range per shard."""
    tables, metas = {}, {}
    for key, shard_inputs in per_shard(context, **inputs):
        tables[key], metas[key] = run_one(shard_inputs)
    name = context.assets_def.key.to_user_string()
    rows = sum(t.num_rows for t in tables.values())
    context.log.info(f"{name}: {rows} rows over {len(tables)} shard(s)")
    meta = next(iter(metas.values())) if len(metas) == 1 else {"per_shard": metas}
    return dg.Output(tables, metadata=plain(meta))


def build_perception_assets(cfg: Config) -> list[dg.AssetsDefinition]:
    tags = gpu_op_tags(cfg.models.k8s, queue=cfg.execution.celery.gpu_queue)
    gpu = {"partitions_def": shards, "group_name": "perception", "pool": "gpu", "op_tags": tags,
           "code_version": PERCEPTION_CODE_VERSION, "backfill_policy": BACKFILL_POLICY}

    @dg.asset(**gpu, description="Boxes for sources that give labels/points but no boxes "
              "(open-vocabulary detector); other objects pass through.")
    def detections(context: dg.AssetExecutionContext, platform: PlatformResource,
                   images, objects) -> dg.Output:
        c = platform.load()
        return _each_shard(context, lambda i: run_detections(i["images"], i["objects"], c.models,
                                                             _image_loader(c)),
                           images=images, objects=objects)

    @dg.asset(**gpu, description="Segment Anything masks prompted by each object's box "
              "(or point); compact bitmap + area + predicted IoU + box IoU.")
    def masks(context: dg.AssetExecutionContext, platform: PlatformResource,
              images, detections) -> dg.Output:
        c = platform.load()
        return _each_shard(context, lambda i: run_masks(i["images"], i["detections"], c.models,
                                                        _image_loader(c)),
                           images=images, detections=detections)

    @dg.asset(**gpu, description="Depth-Anything-V2 maps (disparity or metric), or the "
              "source's own depth maps (provenance 'given').")
    def depth(context: dg.AssetExecutionContext, platform: PlatformResource,
              images) -> dg.Output:
        c = platform.load()

        def one(i):
            table, meta = run_depth(i["images"], c.models, _image_loader(c),
                                    lambda uri: read_depth_map(uri, c.s3))
            # Curation already quarantines bad given depth maps; anything the op still
            # rejects is listed here rather than dropped silently.
            meta["rejected_depth_maps"] = meta.pop("quarantine", [])
            return table, meta

        return _each_shard(context, one, images=images)

    @dg.asset(**gpu, description="Person keypoints (ViTPose, or given COCO keypoints) and a "
              "facing estimate with a confidence.")
    def poses(context: dg.AssetExecutionContext, platform: PlatformResource,
              images, detections) -> dg.Output:
        c = platform.load()
        return _each_shard(context, lambda i: run_poses(i["images"], i["detections"], c.models,
                                                        _image_loader(c)),
                           images=images, detections=detections)

    @dg.asset(partitions_def=shards, group_name="perception", code_version=PERCEPTION_CODE_VERSION,
              backfill_policy=BACKFILL_POLICY,
              description="One row per object: box, mask stats, depth statistics over the "
              "object's pixels, uniqueness, ranks, facing. The only input of QA generation.")
    def scene(context: dg.AssetExecutionContext, platform: PlatformResource, images, detections,
              masks, depth, poses) -> dg.Output:
        c = platform.load()

        def one(i):
            table = build_scene(i["images"], i["detections"], i["masks"], i["depth"], i["poses"], c.qa)
            kinds = sorted(set(table.column("depth_kind").drop_null().to_pylist())) if table.num_rows else []
            return table, {"objects": table.num_rows, "depth_kinds": kinds}

        return _each_shard(context, one, images=images, detections=detections, masks=masks,
                           depth=depth, poses=poses)

    return [detections, masks, depth, poses, scene]
