"""The one shape of a perception model op: prepare inputs, run batches, attach results.

Every op (detection, masks, depth, pose) is a :class:`ModelOp` and runs through
:meth:`ModelOp.run`, as datatrove's pipeline steps share one ``run``:

1. :meth:`~ModelOp.plan`: split the shard into work for the model and what passes through
   (boxes, depth maps or keypoints the source already gives, ``provenance`` ``given``);
2. when there is model work: pick the device, :meth:`~ModelOp.load` the weights, and
   :meth:`~ModelOp.run_batches` (prefetch threads, batches, CUDA OOM back-off:
   :func:`sf_platform.models.batching.run_batches`);
3. :meth:`~ModelOp.attach`: join the model outputs to the objects/images and build the table.

The metadata every op reports (model id, revision, device, batching, counts) is assembled
here once; an op adds only its own figures.  No model is loaded when nothing needs one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sf_platform.config import ModelsConfig
from sf_platform.core.code_version import settings_version
from sf_platform.models.batching import BatchRunner
from sf_platform.models.device import Runtime, resolve_runtime
from sf_platform.models.loading import LoadedModel, base_meta

LoadImage = Callable[[dict], np.ndarray]


@dataclass
class Plan:
    """What one shard asks of an op: ``todo`` for the model, anything else it carries along."""

    todo: list
    data: dict[str, Any] = field(default_factory=dict)


def group_by_image(objs: list[dict], images: pa.Table) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """(image rows by id, the objects of each image); an object whose image is not in
    ``images`` is an upstream join error and fails the op with its ids."""
    image_rows = {r["image_id"]: r for r in images.to_pylist()}
    by_image: dict[str, list[dict]] = defaultdict(list)
    for o in objs:
        if o["image_id"] not in image_rows:
            raise ValueError(f"object {o['object_id']!r} refers to image {o['image_id']!r} not in the images table")
        by_image[o["image_id"]].append(o)
    return image_rows, by_image


class ModelOp:
    """Base of the four model ops; subclasses set :attr:`op` and implement the three steps.

    :attr:`VERSION` is bumped when an op's code changes its output; :meth:`output_settings`
    names the settings that change it; both make the asset's code version
    (:meth:`code_version`)."""

    op: str = ""
    VERSION = "1"

    def __init__(self, cfg: ModelsConfig, load_image: LoadImage, *, tiny_dir: str | Path | None = None):
        self.cfg = cfg
        self.load_image = load_image
        self.tiny_dir = tiny_dir

    @classmethod
    def output_settings(cls, cfg: ModelsConfig) -> dict[str, Any]:
        """What decides this op's rows besides its code: the profile and the op's model config
        without its batch size (model id, revision, backend)."""
        return {"profile": cfg.profile, "model": getattr(cfg, cls.op).model_dump(exclude={"batch_size"})}

    @classmethod
    def code_version(cls, cfg: ModelsConfig, **extra: Any) -> str:
        return settings_version(cls.VERSION, cls.output_settings(cfg) | extra)

    @property
    def batch_size(self) -> int:
        return getattr(self.cfg, self.op).batch_size

    def plan(self, images: pa.Table, objects: pa.Table | None) -> Plan:
        raise NotImplementedError

    def load(self, runtime: Runtime) -> LoadedModel:
        raise NotImplementedError

    def run_batches(self, plan: Plan, loaded: LoadedModel, runtime: Runtime) -> tuple[list, BatchRunner]:
        raise NotImplementedError

    def attach(self, plan: Plan, outputs: list, loaded: LoadedModel | None) -> tuple[pa.Table, dict[str, Any]]:
        """The op's table and its own metadata (counts, thresholds)."""
        raise NotImplementedError

    def summary(self, meta: dict[str, Any]) -> str:
        """One line for the run log: what the op did with the shard."""
        raise NotImplementedError

    def run(self, images: pa.Table, objects: pa.Table | None = None) -> tuple[pa.Table, dict[str, Any]]:
        plan = self.plan(images, objects)
        loaded = runtime = runner = None
        outputs: list = []
        if plan.todo:
            runtime = resolve_runtime(self.cfg.device)
            loaded = self.load(runtime)
            outputs, runner = self.run_batches(plan, loaded, runtime)
        table, own = self.attach(plan, outputs, loaded)
        batching = runner.meta() if runner is not None else {"batch_size": self.batch_size}
        return table, base_meta(self.op, loaded, runtime, self.cfg) | batching | own
