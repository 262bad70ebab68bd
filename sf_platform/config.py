"""The ``sources.yaml`` configuration: storage root, S3 endpoint, sources, models, QA rules.

Validated with pydantic so every wrong key, wrong type or missing path fails with one clear
message naming the offending key (``sources[0].annotations: path does not exist: ...``) before
anything runs.  Relative paths resolve against the config file's own folder, so a config can
travel with its data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sf_platform.core.qa.settings import QASettings
from sf_platform.core.release_mix import TaskMix

FORMATS = ("objects365", "openimages", "pixmo", "synthetic")
# Source keys that name a file or folder (resolved against the config file, checked to exist).
PATH_KEYS = ("images", "annotations", "classes", "depth", "keypoints", "hierarchy", "image_licenses")
# Source keys only the release reads (licence and attribution): changing them re-indexes nothing.
RELEASE_ONLY_KEYS = frozenset({"license", "images_origin", "image_licenses"})


class ConfigError(ValueError):
    """A configuration file is invalid; the message lists every problem, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Config(_Strict):
    endpoint_url: str | None = None
    region: str | None = None
    # Tries per S3 request (botocore standard retry mode, exponential backoff with jitter);
    # see sf_platform.storage.object_store.DEFAULT_MAX_ATTEMPTS for why 10.
    max_attempts: int = Field(default=10, ge=1, le=50)


class SourceConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    format: Literal["objects365", "openimages", "pixmo", "synthetic"]
    images: str
    annotations: str | None = None
    classes: str | None = None
    depth: str | None = None
    keypoints: str | None = None
    # openimages only: bbox_labels_600_hierarchy.json.  Without it, related classes (Man /
    # Person) in one photo go unnoticed and their counts and names can be wrong (see
    # core/sources/openimages.py).
    hierarchy: str | None = None
    shard_size: int = Field(default=1000, ge=1, le=100_000)
    # Which pixel frame the annotations use when a photo carries an EXIF rotation: "raw"
    # (the stored pixel array, what COCO-style tools measure) or "oriented" (as displayed).
    annotation_frame: Literal["raw", "oriented"] = "raw"
    # synthetic only: how many scenes the generator renders.
    num_images: int | None = Field(default=None, ge=1)
    seed: int = 0
    # synthetic only: every k-th photo is stored rotated with an EXIF orientation tag (0: none).
    rotated_every: int = Field(default=0, ge=0)
    # Given depth maps: the unit their numbers are in.  A float .npy is metres and a 16-bit PNG
    # millimetres by convention; an integer .npy says nothing about its unit (a millimetre map
    # read as metres puts a chair 1,000x too far), so it is rejected unless this is set.
    depth_unit: Literal["m", "mm"] | None = None
    # Given depth maps: what an image without a valid map gets.  "model": the depth model
    # estimates it (the default when depth weights are configured); "skip": no depth, so
    # near/far and perspective's front/behind skip the image (the default otherwise).  Either
    # way curation records the image in the quarantine table (depth_missing / depth_* reasons).
    depth_policy: Literal["model", "skip"] | None = None

    @property
    def gives_depth(self) -> bool:
        """The source ships depth maps (its own folder, or the synthetic generator's)."""
        return bool(self.depth) or self.format == "synthetic"
    # The images' licence id (e.g. cc-by-4.0) or Creative Commons URL; default: the format's
    # (core/licenses.py FORMAT_DEFAULTS).  Every release row carries it.
    license: str | None = None
    # Where users obtain the images (stated in the release card and manifest instead of the
    # build machine's folder); default: ``images`` when it is a URL, else the format's page.
    images_origin: str | None = None
    # openimages only: the per-image CSV (ImageID, License, Author, OriginalURL) of the
    # official dump; rows then carry each image's own licence, author and source URL.
    image_licenses: str | None = None

    @model_validator(mode="after")
    def _required_per_format(self) -> SourceConfig:
        fmt = self.format
        if fmt in ("objects365", "openimages", "pixmo") and not self.annotations:
            raise ValueError(f"format {fmt} needs 'annotations'")
        if fmt == "openimages" and not self.classes:
            raise ValueError("format openimages needs 'classes' (class-descriptions CSV)")
        if fmt != "openimages" and self.classes:
            raise ValueError("'classes' is only used by format openimages")
        if fmt != "openimages" and self.hierarchy:
            raise ValueError("'hierarchy' is only used by format openimages")
        if fmt != "synthetic" and self.rotated_every:
            raise ValueError("'rotated_every' is only used by format synthetic")
        if fmt != "openimages" and self.image_licenses:
            raise ValueError("'image_licenses' is only used by format openimages")
        return self


class OpConfig(_Strict):
    model: str | None = None
    revision: str | None = None
    batch_size: int = Field(default=8, ge=1)


class MasksConfig(_Strict):
    backend: Literal["sam", "box"] = "sam"
    checkpoint: str | None = None
    model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    batch_size: int = Field(default=16, ge=1)


class K8sConfig(_Strict):
    """Where GPU steps run on Kubernetes (only used by the k8s run launcher/executor)."""

    gpu_resource: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = Field(default_factory=lambda: {"sf-platform/pool": "gpu"})
    tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    )
    # Memory requested and capped for each GPU step's pod (Kubernetes quantity).  16Gi holds
    # the largest default batch (SAM ViT-B, 16 images at 1024 px, plus decoded images and the
    # shard's tables) with headroom; a larger model or batch needs more.
    memory: str = Field(default="16Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class ModelsConfig(_Strict):
    profile: Literal["real", "tiny"] = "real"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    detection: OpConfig = OpConfig(model="google/owlv2-base-patch16-ensemble", batch_size=8)
    masks: MasksConfig = MasksConfig()
    depth: OpConfig = OpConfig(model="depth-anything/Depth-Anything-V2-Small-hf", batch_size=32)
    pose: OpConfig = OpConfig(model="usyd-community/vitpose-base-simple", batch_size=32)
    k8s: K8sConfig = K8sConfig()

    @property
    def depth_weights_configured(self) -> bool:
        return self.profile == "tiny" or bool(self.depth.model)


class CeleryConfig(_Strict):
    """``execution.celery``: where the Celery executor sends steps (dagster-celery).

    Workers must be started with the same broker (``celery -A sf_platform.defs.celery_app
    worker -Q <queue>``, which reads this section from the same config file).
    """

    # Broker URL without a password (a local RabbitMQ by default); with a password, name an
    # environment variable in ``broker_env`` instead so the secret never sits in a file.
    broker: str = "pyamqp://guest@127.0.0.1//"
    broker_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    backend: str = "rpc://"
    # GPU steps (detections, masks, depth, poses) go to ``gpu_queue``; every other step to
    # ``default_queue`` ("dagster" is dagster-celery's own default queue).
    default_queue: str = Field(default="dagster", pattern=r"^[A-Za-z0-9_.\-]+$")
    gpu_queue: str = Field(default="gpu", pattern=r"^[A-Za-z0-9_.\-]+$")

    @model_validator(mode="after")
    def _distinct_queues(self) -> CeleryConfig:
        if self.default_queue == self.gpu_queue:
            raise ValueError(f"gpu_queue and default_queue must differ, both are {self.gpu_queue!r}")
        return self


class ExecutionConfig(_Strict):
    """``execution:``: which Dagster executor every job of the code location runs with.

    ``in_process`` (default) runs a run's steps one after another in its own process: on one
    machine a subprocess per step would pay seconds of imports (torch, transformers) each,
    and ``sf-platform run`` already runs ``--workers`` runs side by side.  ``multiprocess``
    gives each step a subprocess (``execute_in_process`` and ``materialize`` stay in one
    process whatever is chosen).
    ``celery`` sends each step to a Celery queue (several machines); ``k8s`` makes each step
    its own Kubernetes Job (GPU steps on the GPU node pool, see ``models.k8s``).
    """

    executor: Literal["in_process", "multiprocess", "celery", "k8s"] = "in_process"
    # Steps of one run at a time (multiprocess and k8s); None: as many as the graph allows.
    max_concurrent: int | None = Field(default=None, ge=1)
    celery: CeleryConfig = CeleryConfig()


class ReleaseSettings(_Strict):
    """``release:`` in config: how releases are cut and what they may contain.

    Each section a later feature needs is added here, typed, so a misspelt key fails when the
    config loads, not after the model steps have run.
    """

    # The nightly_release schedule's cron (UTC); it cuts a new date-based version only when a
    # QA partition changed since the last release.
    schedule_cron: str = "0 3 * * *"
    # Version names the schedule gives: strftime pattern of the tick's date, plus a counter
    # when one day has several releases.
    version_format: str = "v%Y.%m.%d"
    # Let scheduled releases contain tiny-model (test) outputs, as --allow-tiny does for the CLI.
    allow_tiny: bool = False
    # Share of images held out as the validation split, assigned by a hash of the image
    # (core/splits.py), so one image's questions never straddle the splits.  0: train only.
    validation_fraction: float = Field(default=0.02, ge=0, lt=1)
    # Exports are one file per task and format, cut into parts above this size: LLaVA's
    # loader json.loads a whole file into memory.
    export_part_max_bytes: int = Field(default=512 * 2**20, ge=1024)
    # Parquet data files per task and split are cut into parts of at most this many rows.
    data_part_max_rows: int = Field(default=1_000_000, ge=1)
    # Per-task quotas or shares (core/release_mix.py); none: every row.
    mix: TaskMix | None = None
    # Never publish a degraded release silently (sf_platform.core.release_guard): refuse when a
    # task's pairs fall below this share of the previous published release.  Releases only grow
    # as shards are added; losing more than a tenth of a task means removed content or a broken
    # generator, which a person must confirm with allow_shrink.
    min_task_share_of_previous: float = Field(default=0.9, ge=0.0, le=1.0)
    # ... or when more than this share of the indexed images was quarantined.  Curating
    # Objects365/OpenImages drops a few per cent of images (corrupt, tiny, unreadable); a fifth
    # means the images are missing or a reader is broken (the probe's moved folder: 100%).
    max_quarantine_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # Publish anyway (the release asset's allow_shrink config / `--allow-shrink` overrides it).
    allow_shrink: bool = False
    # Lease of the publish lock (sf_platform.storage.lock): how long a publisher killed on
    # another machine blocks the next attempt at the same version.
    publish_lease_seconds: float = Field(default=300.0, gt=0.0)


class Config(_Strict):
    storage: str = "file://./sf_store"
    s3: S3Config = S3Config()
    sources: list[SourceConfig] = Field(default_factory=list)
    models: ModelsConfig = ModelsConfig()
    # QA rules and balance targets (typed: a misspelt key fails here, before any model runs).
    qa: QASettings = QASettings()
    release: ReleaseSettings = ReleaseSettings()
    execution: ExecutionConfig = ExecutionConfig()
    base_dir: str = "."  # folder relative paths resolve against (set by the loader)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return v

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, v: str) -> str:
        if "://" in v and not v.startswith(("file://", "s3://")):
            raise ValueError(f"storage must be file://... or s3://bucket/prefix, got {v!r}")
        return v

    def depth_policy(self, name: str) -> Literal["model", "skip"]:
        """What an image of source ``name`` without a valid given depth map gets (see
        ``SourceConfig.depth_policy``); sources without given depth always use the model."""
        src = self.source(name)
        if not src.gives_depth:
            return "model"
        if src.depth_policy is not None:
            return src.depth_policy
        return "model" if self.models.depth_weights_configured else "skip"

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source named {name!r} in the config (have: {[s.name for s in self.sources]})")


def _resolve(base: Path, value: str | None) -> str | None:
    """Make a local path absolute against ``base``; leave URLs (s3://, file://) as they are."""
    if value is None or "://" in value:
        if value and value.startswith("file://"):
            rest = value[len("file://"):]
            return "file://" + str((base / rest).resolve()) if not rest.startswith("/") else value
        return value
    return str((base / os.path.expanduser(value)).resolve())


def _storage_url(base: Path, value: str) -> str:
    """``s3://...`` stays; a local folder (with or without ``file://``) becomes absolute."""
    if value.startswith("s3://") or ("://" in value and not value.startswith("file://")):
        return value
    path = value.removeprefix("file://")
    return "file://" + str((base / os.path.expanduser(path)).resolve())


def _check_paths(cfg: Config) -> list[str]:
    """Local paths named in sources must exist (URLs are checked when first read)."""
    problems = []
    for i, s in enumerate(cfg.sources):
        for key in PATH_KEYS:
            value = getattr(s, key)
            if value is None or "://" in value:
                continue
            if s.format == "synthetic" and key in ("images", "depth"):
                continue  # the generator creates them
            if not Path(value).exists():
                problems.append(f"sources[{i}].{key}: path does not exist: {value}")
    ckpt = cfg.models.masks.checkpoint
    local_ckpt = ckpt and "://" not in ckpt
    uses_ckpt = cfg.models.profile == "real" and cfg.models.masks.backend == "sam"
    if local_ckpt and uses_ckpt and not Path(ckpt).exists():
        problems.append(f"models.masks.checkpoint: path does not exist: {ckpt}")
    return problems


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{loc or '<root>'}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], base_dir: str | Path = ".", check_paths: bool = True) -> Config:
    """Validate a config mapping; relative paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a YAML mapping at the top level")
    base = Path(base_dir).resolve()
    data = dict(data)
    srcs = data.get("sources") or []
    if isinstance(srcs, list):
        fixed = []
        for s in srcs:
            if isinstance(s, dict):
                s = dict(s)
                for key in PATH_KEYS:
                    if isinstance(s.get(key), str):
                        s[key] = _resolve(base, s[key])
            fixed.append(s)
        data["sources"] = fixed
    if isinstance(data.get("storage"), str):
        data["storage"] = _storage_url(base, data["storage"])
    models = data.get("models")
    if isinstance(models, dict) and isinstance(models.get("masks"), dict):
        ck = models["masks"].get("checkpoint")
        if isinstance(ck, str):
            models = dict(models)
            models["masks"] = dict(models["masks"], checkpoint=_resolve(base, ck))
            data["models"] = models
    data["base_dir"] = str(base)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid config:\n" + _format_validation_error(exc)) from None
    if check_paths:
        problems = _check_paths(cfg)
        if problems:
            raise ConfigError("invalid config:\n" + "\n".join(problems))
    return cfg


def load_config(path: str | Path, check_paths: bool = True) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(data, base_dir=p.parent, check_paths=check_paths)
