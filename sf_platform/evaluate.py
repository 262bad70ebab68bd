"""``sf-platform evaluate``: score the configured depth (and pose) model's relation facts.

For every configured source that ships depth maps: index it, curate its first shards, run the
perception ops as the pipeline does (given boxes, masks per config, the *given* depth and
keypoints), then run the configured depth model (and, where the source gives keypoints, the
pose model) on the same images as if nothing were given, build both scenes, and compare their
relation facts (:mod:`sf_platform.core.fact_eval`).  The table is printed and written as an
HTML page (plus JSON) under ``reports/evaluate/`` in the store.

The model runners are parameters so a test can pass its own (one that returns the given
depth must score 0 contradictions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import fact_eval
from sf_platform.core.curation import curate_shard
from sf_platform.core.depth_io import read_depth_map
from sf_platform.core.imaging import load_oriented_rgb
from sf_platform.core.scene import build_scene
from sf_platform.core.sources.index import build_index, read_shard
from sf_platform.storage.layout import evaluation_prefix

DepthRunner = Callable[[pa.Table, pa.Table], pa.Table]  # (images without depth_uri, given depth) -> DEPTH
PoseRunner = Callable[[pa.Table, pa.Table], pa.Table]  # (images, objects without keypoints) -> POSES


class EvaluationError(ValueError):
    """A source cannot be evaluated (no given depth, unknown name)."""


@dataclass
class Evaluation:
    summary: pa.Table  # fact_eval.summarize
    meta: dict = field(default_factory=dict)

    @property
    def markdown(self) -> str:
        return fact_eval.format_table(self.summary)


def _load(row):
    return load_oriented_rgb(row["image_uri"])


def _given_depth(cfg, src):
    """Reads an image row's given depth map in its source's unit (``depth_unit``)."""
    return lambda row: read_depth_map(row["depth_uri"], cfg.s3, src.depth_unit)


def model_depth_runner(cfg) -> DepthRunner:
    from sf_platform.models.depth import run_depth

    # The model side has no given maps (the caller nulls depth_uri), so nothing is read.
    return lambda images, _given: run_depth(images, cfg.models, _load, lambda row: None)[0]


def model_pose_runner(cfg) -> PoseRunner:
    from sf_platform.models.pose import run_poses

    return lambda images, objects: run_poses(images, objects, cfg.models, _load)[0]


def _without(table: pa.Table, column: str) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.nulls(table.num_rows, table.schema.field(column).type))


def _scenes(src, cfg, store, max_images: int, depth_runner: DepthRunner, pose_runner: PoseRunner | None):
    """(given scenes, model scenes, images used) over the source's first shards."""
    from sf_platform.models.depth import run_depth
    from sf_platform.models.detection import run_detections
    from sf_platform.models.masks import run_masks
    from sf_platform.models.pose import run_poses

    summary = build_index(src, store, cfg.s3)
    given, model, n_images = [], [], 0
    for shard in sorted(summary.shards):
        if n_images >= max_images:
            break
        raw = read_shard(store, src.name, shard, summary=summary)
        cur = curate_shard(raw.images, raw.objects, raw.quarantine, summary.images_root or src.images, cfg.s3,
                           src.annotation_frame, gives_depth=src.gives_depth, depth_unit=src.depth_unit)
        images = cur.images.slice(0, max_images - n_images)
        images = images.filter(pc.is_valid(images.column("depth_uri")))
        if not images.num_rows:
            continue
        n_images += images.num_rows
        objects = cur.objects.filter(pc.is_in(cur.objects.column("image_id"), value_set=images.column("image_id")))
        objects, _ = run_detections(images, objects, cfg.models, _load)
        masks, _ = run_masks(images, objects, cfg.models, _load)
        depth, _ = run_depth(images, cfg.models, _load, _given_depth(cfg, src))
        poses, _ = run_poses(images, objects, cfg.models, _load)
        model_poses = poses
        if pose_runner is not None and objects.column("keypoints").null_count < objects.num_rows:
            model_poses = pose_runner(images, _without(objects, "keypoints"))
        given.append(build_scene(images, objects, masks, depth, poses, cfg.qa))
        model.append(build_scene(images, objects, masks, depth_runner(_without(images, "depth_uri"), depth),
                                 model_poses, cfg.qa))
    if not n_images:
        raise EvaluationError(f"source {src.name!r} has no image with a given depth map: nothing to check "
                              "model facts against (set its `depth:` folder)")
    return pa.concat_tables(given), pa.concat_tables(model), n_images


def evaluate(cfg, store, sources: list[str] | None = None, max_images: int = 200,
             depth_runner: DepthRunner | None = None, pose_runner: PoseRunner | None = None,
             with_pose: bool = True) -> Evaluation:
    """Score the model's relation facts on the sources with given depth (all such by default)."""
    names = sources or [s.name for s in cfg.sources if s.depth]
    if not names:
        raise EvaluationError("no configured source has given depth (`depth:`); name one with --source")
    try:
        srcs = [cfg.source(n) for n in names]
    except KeyError as exc:
        raise EvaluationError(str(exc.args[0])) from None
    depth_runner = depth_runner or model_depth_runner(cfg)
    if with_pose and pose_runner is None:
        pose_runner = model_pose_runner(cfg)
    records, used = [], {}
    for src in srcs:
        g, m, n = _scenes(src, cfg, store, max_images, depth_runner, pose_runner if with_pose else None)
        records += fact_eval.compare_facts(g, m, cfg.qa)
        used[src.name] = n
    meta = {
        "sources (images)": used,
        "depth model": cfg.models.depth.model if cfg.models.profile == "real" else "tiny (random weights)",
        "pose model": (cfg.models.pose.model if cfg.models.profile == "real" else "tiny (random weights)")
        if with_pose else "not run (given keypoints used)",
        "near_far_log_margin": cfg.qa.near_far_log_margin,
        "near_far_disparity_margin": cfg.qa.near_far_disparity_margin,
        "left_right_margin": cfg.qa.left_right_margin,
        "min_facing_confidence": cfg.qa.min_facing_confidence,
    }
    return Evaluation(summary=fact_eval.summarize(records), meta=meta)


def write_evaluation(store, evaluation: Evaluation, name: str = "latest") -> str:
    """Write ``index.html`` and ``evaluation.json`` under ``reports/evaluate/<name>/``; returns
    the page's key."""
    prefix = evaluation_prefix(name)
    store.write_text(f"{prefix}/evaluation.json", json.dumps(
        {"meta": evaluation.meta, "rows": evaluation.summary.to_pylist()}, indent=2, default=str))
    key = f"{prefix}/index.html"
    store.write_text(key, fact_eval.render_html(evaluation.summary, evaluation.meta))
    return key
