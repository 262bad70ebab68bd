"""Tiny random-weight perception models (``models.profile: tiny``) for tests, CI and demos.

Each model is built from a config with the *real* architecture class (Depth-Anything, OWLv2,
segment-anything SAM, ViTPose), shrunk to a few thousand parameters (recipes measured in
STACK.md), seeded so two builds are identical, saved the way real weights are distributed
(``save_pretrained`` safetensors; SAM as a ``torch.save`` state dict like its original
``.pth`` checkpoints) and then loaded through the same loader as real weights.  Their
outputs mean nothing; their shapes, dtypes, batching and bookkeeping are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

# Bump when a recipe changes so stale caches are rebuilt.
RECIPE_VERSION = 1
SEED = 1234
OPS = ("depth", "detection", "masks", "pose")
SAM_TINY_FILE = "sam_tiny.pth"
SAM_TINY_IMG_SIZE = 256
ENV_CACHE_DIR = "SF_PLATFORM_TINY_MODELS"


def default_cache_dir() -> Path:
    """``$SF_PLATFORM_TINY_MODELS`` or ``~/.cache/sf_platform/tiny_models``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else Path.home() / ".cache" / "sf_platform" / "tiny_models"


def _build_depth(out: Path) -> None:
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=518,
        patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=32, reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )
    DepthAnythingForDepthEstimation(cfg).save_pretrained(out)
    DPTImageProcessor(
        size={"height": 252, "width": 252}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(out)


def _tiny_clip_tokenizer():
    """A byte-level CLIP tokenizer with no merges (every character is a token): built offline."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)


def _build_detection(out: Path) -> None:
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    tok = _tiny_clip_tokenizer()
    text = {
        "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "max_position_embeddings": 16,
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
    }
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 256, "patch_size": 32}
    cfg = Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
    Owlv2ForObjectDetection(cfg).save_pretrained(out)
    Owlv2Processor(Owlv2ImageProcessor(size={"height": 256, "width": 256}), tok).save_pretrained(out)


def build_tiny_sam():
    """The tiny segment-anything ``Sam`` architecture (random init): 256 px input, 16x16 embedding."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    size = SAM_TINY_IMG_SIZE
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=size, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, out_chans=32,
            use_rel_pos=True, window_size=4, global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=32, image_embedding_size=(size // 16, size // 16), input_image_size=(size, size), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def _build_masks(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.save(build_tiny_sam().state_dict(), out / SAM_TINY_FILE)


def _build_pose(out: Path) -> None:
    from transformers import (
        VitPoseBackboneConfig,
        VitPoseConfig,
        VitPoseForPoseEstimation,
        VitPoseImageProcessor,
    )

    backbone = VitPoseBackboneConfig(
        image_size=[64, 48], patch_size=[16, 16], hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        mlp_ratio=2, out_indices=[2],
    )
    cfg = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, scale_factor=4, num_labels=17)
    VitPoseForPoseEstimation(cfg).save_pretrained(out)
    VitPoseImageProcessor(size={"height": 64, "width": 48}).save_pretrained(out)


_BUILDERS = {"depth": _build_depth, "detection": _build_detection, "masks": _build_masks, "pose": _build_pose}


def _artifact(op: str, folder: Path) -> Path:
    return folder / SAM_TINY_FILE if op == "masks" else folder


def ensure_tiny_models(cache_dir: str | Path | None = None, ops: tuple[str, ...] = OPS) -> dict[str, str]:
    """Build (once) and return ``{op: path}`` of the tiny models under ``cache_dir``.

    ``path`` is what the production loader takes: a ``save_pretrained`` folder, or SAM's
    checkpoint file.  Each model is built in a temporary folder and renamed into place, so
    parallel test workers never see a half-written model.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for op in ops:
        if op not in _BUILDERS:
            raise ValueError(f"no tiny model for op {op!r}; have {sorted(_BUILDERS)}")
        final = root / f"{op}-v{RECIPE_VERSION}"
        if not (final / "tiny.json").exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{op}-", dir=root))
            try:
                torch.manual_seed(SEED)
                _BUILDERS[op](tmp)
                (tmp / "tiny.json").write_text(json.dumps({"op": op, "recipe_version": RECIPE_VERSION, "seed": SEED}))
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not (final / "tiny.json").exists():  # not a lost race: a real failure
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        paths[op] = str(_artifact(op, final))
    return paths
