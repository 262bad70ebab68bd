"""Perception: the four GPU-tagged model assets and the per-object scene table, from one factory.

Each model asset runs in the ``gpu`` concurrency pool and carries the ``dagster-k8s/config``
tag that asks Kubernetes for one ``nvidia.com/gpu`` (node selector and tolerations from the
``models.k8s`` config).  The ops themselves pick CUDA when present and fall back to CPU, and a
source that already provides the input (boxes, depth maps, keypoints) passes it through.

Every asset is a :class:`PerceptionStep` built by :func:`build_perception_asset`: its inputs by
name, a compute function returning (table, metadata, one-line summary), and its own
``code_version`` made of the op's version and the settings that decide its output
(``ModelOp.code_version``, ``core.scene.scene_code_version``), so a new depth model re-runs
depth and what reads it, never detection or masks.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from sf_platform.config import Config
from sf_platform.core.depth_io import read_depth_map
from sf_platform.core.scene import build_scene, scene_code_version
from sf_platform.defs.gpu_tags import gpu_op_tags
from sf_platform.defs.metadata import plain
from sf_platform.defs.partitions import shards
from sf_platform.defs.resources import PlatformResource
from sf_platform.defs.shard_runs import BACKFILL_POLICY, per_shard
from sf_platform.models.depth import DepthOp
from sf_platform.models.detection import DetectionOp
from sf_platform.models.inputs import ImageLoader
from sf_platform.models.masks import MasksOp
from sf_platform.models.op import ModelOp
from sf_platform.models.pose import PoseOp

Computed = tuple[pa.Table, dict, str]  # table, metadata, one-line summary


@dataclass(frozen=True)
class PerceptionStep:
    name: str
    inputs: tuple[str, ...]
    description: str
    code_version: Callable[[Config], str]
    compute: Callable[[Config, dict[str, pa.Table]], Computed]
    gpu: bool = True


def _image_loader(cfg: Config) -> ImageLoader:
    """Loads each image once, at the smallest JPEG scale the model input allows."""
    return ImageLoader(cfg.s3)


def _depth_op(c: Config) -> DepthOp:
    """Given maps read in their source's ``depth_unit``; images without one follow their
    source's ``depth_policy``."""
    return DepthOp(
        c.models, _image_loader(c),
        lambda row: read_depth_map(row["depth_uri"], c.s3, c.source(row["source"]).depth_unit),
        skips=lambda row: c.depth_policy(row["source"]) == "skip",
    )


def _depth_code_version(c: Config) -> str:
    given = {s.name: [c.depth_policy(s.name), s.depth_unit] for s in c.sources if s.gives_depth}
    return DepthOp.code_version(c.models, given_depth=given)


def _model_step(name: str, op_cls: type[ModelOp], inputs: tuple[str, ...], description: str,
                make: Callable[[Config], ModelOp] | None = None,
                code_version: Callable[[Config], str] | None = None) -> PerceptionStep:
    """A model asset: ``op_cls`` run on ``inputs`` (images first), summarised by the op."""

    def compute(c: Config, t: dict[str, pa.Table]) -> Computed:
        op = make(c) if make else op_cls(c.models, _image_loader(c))
        table, meta = op.run(*(t[n] for n in inputs))
        return table, meta, op.summary(meta)

    return PerceptionStep(name, inputs, description, code_version or (lambda c: op_cls.code_version(c.models)),
                          compute)


def _scene(c: Config, t: dict[str, pa.Table]) -> Computed:
    table = build_scene(t["images"], t["detections"], t["masks"], t["depth"], t["poses"], c.qa)
    kinds = sorted(set(table.column("depth_kind").drop_null().to_pylist())) if table.num_rows else []
    images = len(set(table.column("image_id").to_pylist()))
    summary = f"scene: {table.num_rows} objects on {images} images, depth kinds {kinds or 'none'}"
    return table, {"objects": table.num_rows, "depth_kinds": kinds}, summary


STEPS = (
    _model_step("detections", DetectionOp, ("images", "objects"),
                "Boxes for sources that give labels/points but no boxes (open-vocabulary detector); "
                "other objects pass through."),
    _model_step("masks", MasksOp, ("images", "detections"),
                "Segment Anything masks prompted by each object's box (or point); compact bitmap + "
                "area + predicted IoU + box IoU."),
    _model_step("depth", DepthOp, ("images",),
                "Depth-Anything-V2 maps (disparity or metric), or the source's own depth maps "
                "(provenance 'given').",
                make=_depth_op, code_version=_depth_code_version),
    _model_step("poses", PoseOp, ("images", "detections"),
                "Person keypoints (ViTPose, or given COCO keypoints) and a facing estimate with a "
                "confidence."),
    PerceptionStep("scene", ("images", "detections", "masks", "depth", "poses"),
                   "One row per object: box, mask stats, depth statistics over the object's pixels, "
                   "instance facts, ranks, facing. The only input of QA generation.",
                   lambda c: scene_code_version(c.qa), _scene, gpu=False),
)


def build_perception_asset(step: PerceptionStep, cfg: Config) -> dg.AssetsDefinition:
    gpu = {"pool": "gpu", "op_tags": gpu_op_tags(cfg.models.k8s, queue=cfg.execution.celery.gpu_queue)} \
        if step.gpu else {}

    @dg.asset(
        name=step.name,
        partitions_def=shards,
        group_name="perception",
        code_version=step.code_version(cfg),
        ins={name: dg.AssetIn(name) for name in step.inputs},
        description=step.description,
        backfill_policy=BACKFILL_POLICY,
        **gpu,
    )
    def _asset(context: dg.AssetExecutionContext, platform: PlatformResource, **inputs) -> dg.Output:
        # Inputs are one table per input, or per shard when the run covers a range of shards
        # (defs/shard_runs.py); each shard is computed on its own either way.
        cfg = platform.load()
        tables, metas = {}, {}
        for key, shard_inputs in per_shard(context, **inputs):
            tables[key], metas[key], summary = step.compute(cfg, shard_inputs)
            context.log.info(f"{summary} [{key}]")
        meta = next(iter(metas.values())) if len(metas) == 1 else {"per_shard": metas}
        return dg.Output(tables, metadata=plain(meta))

    return _asset


def build_perception_assets(cfg: Config) -> list[dg.AssetsDefinition]:
    return [build_perception_asset(step, cfg) for step in STEPS]
