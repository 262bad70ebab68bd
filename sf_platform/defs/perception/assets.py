"""Perception: the four GPU-tagged model assets and the per-object scene table.

Each model asset runs in the ``gpu`` concurrency pool and carries the ``dagster-k8s/config``
tag that asks Kubernetes for one ``nvidia.com/gpu`` (node selector and tolerations from the
``models.k8s`` config).  The ops themselves pick CUDA when present and fall back to CPU, and a
source that already provides the input (boxes, depth maps, keypoints) passes it through.
"""


import dagster as dg
import pyarrow as pa

from sf_platform.config import Config
from sf_platform.core.depth_io import read_depth_map
from sf_platform.core.scene import build_scene
from sf_platform.defs.gpu_tags import gpu_op_tags
from sf_platform.defs.metadata import plain
from sf_platform.defs.partitions import shards
from sf_platform.defs.resources import PlatformResource
from sf_platform.models.depth import run_depth
from sf_platform.models.detection import run_detections
from sf_platform.models.inputs import ImageLoader
from sf_platform.models.masks import run_masks
from sf_platform.models.pose import run_poses

PERCEPTION_CODE_VERSION = "1"


def _image_loader(cfg: Config) -> ImageLoader:
    """Loads each image once, at the smallest JPEG scale the model input allows."""
    return ImageLoader(cfg.s3)


def build_perception_assets(cfg: Config) -> list[dg.AssetsDefinition]:
    tags = gpu_op_tags(cfg.models.k8s, queue=cfg.execution.celery.gpu_queue)
    gpu = {"partitions_def": shards, "group_name": "perception", "pool": "gpu", "op_tags": tags,
               "code_version": PERCEPTION_CODE_VERSION}

    @dg.asset(**gpu, description="Boxes for sources that give labels/points but no boxes "
              "(open-vocabulary detector); other objects pass through.")
    def detections(context: dg.AssetExecutionContext, platform: PlatformResource,
                   images: pa.Table, objects: pa.Table) -> dg.Output:
        c = platform.load()
        table, meta = run_detections(images, objects, c.models, _image_loader(c))
        return dg.Output(table, metadata=plain(meta))

    @dg.asset(**gpu, description="Segment Anything masks prompted by each object's box "
              "(or point); compact bitmap + area + predicted IoU + box IoU.")
    def masks(context: dg.AssetExecutionContext, platform: PlatformResource,
              images: pa.Table, detections: pa.Table) -> dg.Output:
        c = platform.load()
        table, meta = run_masks(images, detections, c.models, _image_loader(c))
        return dg.Output(table, metadata=plain(meta))

    @dg.asset(**gpu, description="Depth-Anything-V2 maps (disparity or metric), or the "
              "source's own depth maps (provenance 'given').")
    def depth(context: dg.AssetExecutionContext, platform: PlatformResource,
              images: pa.Table) -> dg.Output:
        c = platform.load()
        table, meta = run_depth(images, c.models, _image_loader(c),
                                lambda uri: read_depth_map(uri, c.s3))
        # Curation already quarantines bad given depth maps; anything the op still rejects is
        # listed here rather than dropped silently.
        rejected = meta.pop("quarantine", [])
        meta["rejected_depth_maps"] = rejected
        return dg.Output(table, metadata=plain(meta))

    @dg.asset(**gpu, description="Person keypoints (ViTPose, or given COCO keypoints) and a "
              "facing estimate with a confidence.")
    def poses(context: dg.AssetExecutionContext, platform: PlatformResource,
              images: pa.Table, detections: pa.Table) -> dg.Output:
        c = platform.load()
        table, meta = run_poses(images, detections, c.models, _image_loader(c))
        return dg.Output(table, metadata=plain(meta))

    @dg.asset(partitions_def=shards, group_name="perception", code_version=PERCEPTION_CODE_VERSION,
              description="One row per object: box, mask stats, depth statistics over the "
              "object's pixels, uniqueness, ranks, facing. The only input of QA generation.")
    def scene(context: dg.AssetExecutionContext, platform: PlatformResource, images: pa.Table,
              detections: pa.Table, masks: pa.Table, depth: pa.Table, poses: pa.Table) -> dg.Output:
        c = platform.load()
        table = build_scene(images, detections, masks, depth, poses, c.qa)
        kinds = sorted(set(table.column("depth_kind").drop_null().to_pylist())) if table.num_rows else []
        return dg.Output(table, metadata=plain({"objects": table.num_rows, "depth_kinds": kinds}))

    return [detections, masks, depth, poses, scene]
