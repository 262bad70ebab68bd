"""Load perception weights from a local folder or a Hugging Face hub id, safetensors only.

- transformers models: ``from_pretrained(ref, use_safetensors=True)``; with ``HF_HUB_OFFLINE``
  (or ``TRANSFORMERS_OFFLINE``) set, ``local_files_only=True`` so nothing tries the network.
- segment-anything SAM: the original ``.pth`` checkpoints, read with
  ``torch.load(weights_only=True)`` (tensors only, no pickled code) into the architecture named
  by ``models.masks.model_type``.
- Any missing / unreachable / incompatible weights raise ONE :class:`ModelWeightsMissing`
  naming the config key, the model and the two ways to fix it.
- The ``revision`` recorded in metadata is the configured revision, or a sha256 of the weight
  files (first ``HASH_BYTES`` of each, plus their sizes): two runs with the same hash used the
  same weights, whatever folder or cache they came from.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sf_platform.config import Config, ModelsConfig
from sf_platform.models.device import Runtime

HASH_BYTES = 64 * 1024 * 1024
_TRUTHY = ("1", "true", "yes", "on")


class ModelWeightsMissing(RuntimeError):
    """Weights for a perception op are not available; the message says how to provide them."""


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    model_id: str  # what the config named (hub id or folder), or "tiny:<op>"
    revision: str
    tiny: bool


def hub_offline() -> bool:
    return any(os.environ.get(k, "").lower() in _TRUTHY for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _how_to_fix(op: str, ref: str | None) -> str:
    key = "models.masks.checkpoint" if op == "masks" else f"models.{op}.model"
    dl = (
        f"`hf download {ref} --local-dir <dir>`" if ref and "/" in ref and not Path(ref).exists() else "the weights"
    )
    return (
        f"Download {dl} on a machine with access, put the local path in {key}, "
        f"or set models.profile: tiny to run with tiny random-weight models."
    )


def missing(op: str, ref: str | None, why: str) -> ModelWeightsMissing:
    return ModelWeightsMissing(f"weights for the {op} op ({ref!r}) are not available: {why}. {_how_to_fix(op, ref)}")


def files_hash(paths: list[Path], max_bytes: int = HASH_BYTES) -> str:
    """sha256 over (name-independent) size + first ``max_bytes`` of each file, 16 hex digits."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(str(p.stat().st_size).encode())
        with open(p, "rb") as f:
            left = max_bytes
            while left > 0:
                chunk = f.read(min(1 << 20, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()[:16]


def _safetensors_files(ref: str, revision: str | None) -> list[Path]:
    local = Path(ref)
    if local.is_dir():
        return sorted(local.glob("*.safetensors"))
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref, "model.safetensors", revision=revision)
    return [Path(found)] if isinstance(found, str) else []


def load_transformers(model_cls, processor_cls, ref: str | None, *, op: str, runtime: Runtime,
                      revision: str | None = None, tiny: bool = False) -> LoadedModel:
    """Load a transformers model + processor from a folder or hub id onto ``runtime``."""
    if not ref:
        raise missing(op, ref, f"models.{op}.model is not set")
    kwargs: dict[str, Any] = {}
    if not Path(ref).is_dir():
        if Path(ref).exists() or ref.startswith((".", "/", "~")):
            raise missing(op, ref, "a local path that is not a model folder")
        kwargs = {"revision": revision, "local_files_only": hub_offline()}
    try:
        processor = processor_cls.from_pretrained(ref, **kwargs)
        model = model_cls.from_pretrained(ref, use_safetensors=True, dtype=runtime.dtype, **kwargs)
    except (OSError, ValueError) as exc:
        offline = " (HF_HUB_OFFLINE is set, so only local files are used)" if hub_offline() else ""
        raise missing(op, ref, f"{type(exc).__name__}: {str(exc).splitlines()[0]}{offline}") from exc
    model.to(runtime.device).eval()
    files = _safetensors_files(ref, revision)
    rev = revision or (f"sha256:{files_hash(files)}" if files else "unknown")
    return LoadedModel(model, processor, f"tiny:{op}" if tiny else ref, rev, tiny)


SAM_TYPES = ("vit_b", "vit_l", "vit_h", "tiny")


def build_sam(model_type: str):
    """The (randomly initialised) segment-anything architecture for ``model_type``."""
    if model_type == "tiny":
        from sf_platform.models.tiny import build_tiny_sam

        return build_tiny_sam()
    from segment_anything import sam_model_registry

    if model_type not in sam_model_registry or model_type == "default":
        raise ValueError(f"SAM model_type must be one of {SAM_TYPES}, got {model_type!r}")
    return sam_model_registry[model_type](checkpoint=None)  # weights are loaded below, tensors only


def load_sam(checkpoint: str | None, model_type: str, *, runtime: Runtime, tiny: bool = False) -> LoadedModel:
    """SAM from an original ``sam_vit_*.pth`` checkpoint, ``torch.load(weights_only=True)``."""
    if not checkpoint:
        raise missing("masks", checkpoint, "models.masks.checkpoint is not set (e.g. sam_vit_b_01ec64.pth)")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise missing("masks", checkpoint, "no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise missing("masks", checkpoint, f"not a tensors-only checkpoint ({type(exc).__name__}: {exc})") from exc
    sam = build_sam(model_type)
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:
        raise missing("masks", checkpoint, f"does not match models.masks.model_type={model_type!r}") from exc
    sam.to(runtime.device).eval()
    return LoadedModel(sam, None, "tiny:masks" if tiny else f"sam_{model_type}", f"sha256:{files_hash([path])}", tiny)


def model_ref(cfg: ModelsConfig, op: str, tiny_dir: str | Path | None = None) -> tuple[str | None, bool]:
    """What to load for ``op``: (folder / hub id / checkpoint, tiny?) under the config's profile."""
    if cfg.profile == "tiny":
        from sf_platform.models.tiny import ensure_tiny_models

        return ensure_tiny_models(tiny_dir, ops=(op,))[op], True
    if op == "masks":
        return cfg.masks.checkpoint, False
    return getattr(cfg, op).model, False


def base_meta(op: str, loaded: LoadedModel | None, runtime: Runtime | None, cfg: ModelsConfig) -> dict[str, Any]:
    """The metadata every op reports: model, revision, device, dtype, tiny flag."""
    meta: dict[str, Any] = {"op": op, "tiny": cfg.profile == "tiny", "model_loaded": loaded is not None}
    if loaded is not None:
        meta.update(model=loaded.model_id, revision=loaded.revision)
    else:
        meta.update(model=None, revision=None)
    if runtime is not None:
        meta.update(runtime.describe())
    else:
        meta.update(device=None, dtype=None)
    return meta


def _needs(cfg: Config) -> dict[str, list[str]]:
    """Op -> the sources that may need its model (``check_loadable``)."""
    needs: dict[str, list[str]] = {"detection": [], "masks": [], "depth": [], "pose": []}
    for s in cfg.sources:
        if s.format == "pixmo":  # points and labels, no boxes
            needs["detection"].append(s.name)
        if cfg.models.masks.backend == "sam":
            needs["masks"].append(s.name)
        if cfg.depth_policy(s.name) == "model":  # no given depth, or given with policy model
            needs["depth"].append(s.name)
        if not (s.keypoints or s.format == "synthetic"):  # no given keypoints for its persons
            needs["pose"].append(s.name)
    return {op: names for op, names in needs.items() if names}


def _weights_problem(op: str, ref: str | None, revision: str | None) -> str | None:
    """Why ``ref`` cannot be loaded for ``op``, found without loading it, or None."""
    key = "models.masks.checkpoint" if op == "masks" else f"models.{op}.model"
    if not ref:
        return f"{key} is not set"
    path = Path(ref).expanduser()
    if op == "masks":
        return None if path.is_file() else f"{key}: no such checkpoint file {ref!r}"
    if path.exists() or ref.startswith((".", "/", "~")):
        return None if (path / "config.json").is_file() else f"{key}: {ref!r} is not a model folder (no config.json)"
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(ref, "config.json", revision=revision), str):
            return f"{key}: {ref!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    return None  # a hub id with the network allowed: from_pretrained downloads it


def check_loadable(cfg: Config) -> list[str]:
    """Every problem with the weights the configured sources will need, one line each, naming
    the op, the config key and the sources that need it; empty when all can be loaded.

    Meant to run before any shard (``sf-platform run`` calls it), so a missing model fails in
    seconds rather than at the depth step of every shard.  Needs: detection for PixMo (points,
    no boxes), SAM masks for every source unless ``masks.backend: box``, depth for sources
    without given depth maps and for given-depth sources with ``depth_policy: model``, pose for
    sources without given keypoints.  ``profile: tiny`` builds its models and needs nothing.
    """
    if cfg.models.profile == "tiny":
        return []
    problems = []
    for op, names in _needs(cfg).items():
        if op == "masks":
            ref, revision = cfg.models.masks.checkpoint, None
        else:
            ref, revision = getattr(cfg.models, op).model, getattr(cfg.models, op).revision
        why = _weights_problem(op, ref, revision)
        if why:
            hint = " (or set depth_policy: skip on given-depth sources)" if op == "depth" else ""
            problems.append(f"{op} model needed by source(s) {', '.join(names)}: {why}. {_how_to_fix(op, ref)}{hint}")
    return problems
