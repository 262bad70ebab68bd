"""Throughput of the perception ops, and their per-image overhead outside the forward pass.

Part 1 (real-size): each op runs through its production code path (prefetch threads, batching,
pre/post-processing) with a REAL-SIZE architecture built from the real config with random
weights (no download): Depth-Anything-V2-Small at 518 px, SAM ViT-B (1024 px encoder),
OWLv2-base-patch16 (960 px), ViTPose-base (256x192).  Reported: images/s for the op and the
share of time inside the model's forward.  Weight loading is excluded (the models are built
in memory and handed to the op).

Part 2 (overhead): the same ops with the tiny models, where the forward pass costs almost
nothing, so the wall time minus the time inside forward is the overhead per image: JPEG fetch
+ decode (``core.imaging.load_oriented_rgb`` on local files), preprocessing, postprocessing
and bookkeeping.  Run with one torch thread; the budget is 10 ms per image per core.

    .venv/bin/python bench/perception.py --images 4 --batch-size 2             # CPU, small
    .venv/bin/python bench/perception.py --images 256 --batch-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from machine import describe
from PIL import Image

from sf_platform.config import ModelsConfig
from sf_platform.core import schemas
from sf_platform.models import depth as depth_op
from sf_platform.models import detection as detection_op
from sf_platform.models import masks as masks_op
from sf_platform.models import pose as pose_op
from sf_platform.models.device import resolve_runtime
from sf_platform.models.loading import LoadedModel

OVERHEAD_BUDGET_MS = 10.0
BOXES_PER_IMAGE = 8  # masks: boxes decoded per image (a typical Objects365 image has ~15)
PERSONS_PER_IMAGE = 2
POINT_OBJECTS_PER_IMAGE = 2


def machine() -> str:
    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return describe(gpu, f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


# --- inputs ----------------------------------------------------------------------------
def make_images(n: int, width: int, height: int, folder: Path) -> pa.Table:
    """``n`` JPEG photos (scikit-image's astronaut / coffee / chelsea, resized) on local disk."""
    import skimage.data

    bases = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    rows = []
    for i in range(n):
        im = Image.fromarray(bases[i % len(bases)]).resize((width, height))
        path = folder / f"{i:05d}.jpg"
        im.save(path, quality=90)
        rows.append({"source": "bench", "shard": "0", "image_id": str(i), "image_uri": path.as_uri(),
                     "width": width, "height": height})
    return pa.Table.from_pylist(rows, schema=schemas.IMAGES)


def make_objects(images: pa.Table) -> pa.Table:
    rng = np.random.default_rng(0)
    rows = []
    for img in images.to_pylist():
        w, h = img["width"], img["height"]
        for k in range(BOXES_PER_IMAGE):
            x1, y1 = rng.uniform(0, 0.7 * w), rng.uniform(0, 0.7 * h)
            box = [x1, y1, x1 + rng.uniform(0.05, 0.3) * w, y1 + rng.uniform(0.1, 0.3) * h]
            cat = "person" if k < PERSONS_PER_IMAGE else "chair"
            rows.append({"source": "bench", "shard": "0", "object_id": f"{img['image_id']}-{k}",
                         "image_id": img["image_id"], "category": cat, "bbox_px": box, "provenance": "annotation"})
        for k in range(POINT_OBJECTS_PER_IMAGE):
            pts = [{"x": float(rng.uniform(0, w)), "y": float(rng.uniform(0, h))} for _ in range(3)]
            rows.append({"source": "bench", "shard": "0", "object_id": f"{img['image_id']}-p{k}",
                         "image_id": img["image_id"], "category": "cup", "points": pts, "provenance": "points"})
    return pa.Table.from_pylist(rows, schema=schemas.OBJECTS)


def image_loader():
    """The loader the Dagster wiring hands the ops: reduced JPEG decodes where the op allows
    (falls back to the full-decode loader of older checkouts, for before/after runs)."""
    try:
        from sf_platform.models.inputs import ImageLoader
    except ImportError:
        from sf_platform.core.imaging import load_oriented_rgb

        return lambda row: load_oriented_rgb(row["image_uri"])
    return ImageLoader()


# --- real-size architectures (random weights from the real configs) ---------------------------
def real_depth():
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518,
                            patch_size=14, out_features=["stage3", "stage6", "stage9", "stage12"],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=384,
                              reassemble_factors=[4, 2, 1, 0.5], neck_hidden_sizes=[48, 96, 192, 384],
                              fusion_hidden_size=64, head_hidden_size=32, depth_estimation_type="relative")
    proc = DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                             image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return DepthAnythingForDepthEstimation(cfg), proc


def real_owlv2():
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    from sf_platform.models.tiny import _tiny_clip_tokenizer

    text = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
            "num_attention_heads": 8, "max_position_embeddings": 16}
    vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
              "image_size": 960, "patch_size": 16}
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=512))
    return model, Owlv2Processor(Owlv2ImageProcessor(size={"height": 960, "width": 960}), _tiny_clip_tokenizer())


def real_vitpose():
    from transformers import (
        VitPoseBackboneConfig,
        VitPoseConfig,
        VitPoseForPoseEstimation,
        VitPoseImageProcessor,
    )

    backbone = VitPoseBackboneConfig(image_size=[256, 192], patch_size=[16, 16], hidden_size=768, num_hidden_layers=12,
                                     num_attention_heads=12, mlp_ratio=4, out_indices=[12])
    model = VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, scale_factor=4,
                                                   num_labels=17))
    return model, VitPoseImageProcessor(size={"height": 256, "width": 192})


def real_sam():
    from segment_anything import sam_model_registry

    return sam_model_registry["vit_b"](checkpoint=None)


# --- timing ----------------------------------------------------------------------------
class ForwardTimer:
    """Accumulates the time spent inside ``module_cls.forward`` (synchronising CUDA).

    ``seconds`` is wall time; ``cpu_seconds`` the CPU time of the calling thread, which with
    one torch thread is all the forward's CPU: subtracting it (not the wall time) from the
    process's CPU time keeps the overhead figure honest on a loaded machine, where a
    descheduled forward would otherwise count as negative overhead.
    """

    def __init__(self, module_cls):
        self.cls, self.seconds, self.cpu_seconds, self.calls = module_cls, 0.0, 0.0, 0

    def __enter__(self):
        self.original = original = self.cls.forward
        timer = self

        def timed(module, *a, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.thread_time()
            out = original(module, *a, **kw)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            timer.seconds += time.perf_counter() - t0
            timer.cpu_seconds += time.thread_time() - c0
            timer.calls += 1
            return out

        self.cls.forward = timed
        return self

    def __exit__(self, *exc):
        self.cls.forward = self.original


@contextlib.contextmanager
def preloaded(module, loaded: LoadedModel):
    """Hand an in-memory model to an op in place of loading weights from disk."""
    original = module.load_transformers
    module.load_transformers = lambda *a, **k: loaded
    try:
        yield
    finally:
        module.load_transformers = original


def run_op(op: str, models: dict, images, objects, cfg: ModelsConfig, load):
    """Run ``op`` through its production path; returns (seconds, forward seconds, forward CPU seconds)."""
    runtime = resolve_runtime(cfg.device)
    ids = set(images.column("image_id").to_pylist())
    objects = pa.Table.from_pylist([o for o in objects.to_pylist() if o["image_id"] in ids], schema=objects.schema)
    if op == "masks":
        sam = models["masks"].to(runtime.device).eval()
        objs = [o for o in objects.to_pylist() if o["bbox_px"] is not None or o["points"]]
        from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder

        from sf_platform.models.op import group_by_image

        # SAM's forward is its three modules: image encoder, prompt encoder, mask decoder.
        with ForwardTimer(ImageEncoderViT) as enc, ForwardTimer(PromptEncoder) as pro, ForwardTimer(MaskDecoder) as dec:
            t0 = time.perf_counter()
            image_rows, by_image = group_by_image(objs, images)
            masks_op.run_sam(sam, runtime, sorted(by_image), image_rows, by_image, load, cfg.masks.batch_size,
                             "sam:bench")
            total = time.perf_counter() - t0
        parts = (enc, pro, dec)
        return total, sum(p.seconds for p in parts), sum(p.cpu_seconds for p in parts)
    model, proc = models[op]
    model = model.to(runtime.device, runtime.dtype).eval()
    loaded = LoadedModel(model, proc, f"bench:{op}", "random", False)
    module = {"depth": depth_op, "detection": detection_op, "pose": pose_op}[op]
    with preloaded(module, loaded), ForwardTimer(type(model)) as fwd:
        t0 = time.perf_counter()
        if op == "depth":
            depth_op.run_depth(images, cfg, load, lambda uri: None)
        elif op == "detection":
            detection_op.run_detections(images, objects, cfg, load, score_threshold=0.0)
        else:
            pose_op.run_poses(images, objects, cfg, load)
        total = time.perf_counter() - t0
    return total, fwd.seconds, fwd.cpu_seconds


def bench_real(args, images, objects, load):
    print(f"\n== real-size architectures, random weights: {args.images} images "
          f"{args.width}x{args.height}, batch {args.batch_size}, device {args.device}")
    bs = args.batch_size
    cfg = ModelsConfig(device=args.device, detection={"batch_size": bs}, depth={"batch_size": bs},
                       pose={"batch_size": bs * PERSONS_PER_IMAGE}, masks={"batch_size": bs})
    builders = {"depth": real_depth, "masks": real_sam, "detection": real_owlv2, "pose": real_vitpose}
    warm_imgs = images.slice(0, 1)
    for op in args.ops:
        torch.manual_seed(0)
        models = {op: builders[op]()}
        run_op(op, models, warm_imgs, objects, cfg, load)  # warm-up (allocations, kernels)
        total, fwd, _ = run_op(op, models, images, objects, cfg, load)
        print(f"{op:10s} {args.images / total:8.2f} images/s   forward {100 * fwd / total:5.1f}% of op time"
              f"   ({total:.2f} s)")
        del models


def bench_overhead(args, folder, load):
    from sf_platform.models.tiny import ensure_tiny_models

    n = args.overhead_images
    images = make_images(n, args.width, args.height, folder / "overhead")
    objects = make_objects(images)
    tiny = ensure_tiny_models(args.tiny_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    print(f"\n== overhead outside forward, tiny models, CPU, 1 torch thread: {n} images {args.width}x{args.height}")
    t0 = time.process_time()
    for row in images.to_pylist():
        load(row)
    decode_ms = 1000 * (time.process_time() - t0) / n
    print(f"{'fetch+decode':12s} {decode_ms:6.2f} ms/image CPU (full-size JPEG read + decode + EXIF orientation;"
          " the ops may decode at 1/2..1/8)")
    cfg = ModelsConfig(profile="tiny", device="cpu")
    from transformers import (
        AutoImageProcessor,
        AutoProcessor,
        DepthAnythingForDepthEstimation,
        Owlv2ForObjectDetection,
        VitPoseForPoseEstimation,
    )

    from sf_platform.models.loading import load_sam, load_transformers
    from sf_platform.models.tiny import build_tiny_sam  # noqa: F401 - imported for the masks path

    rt = resolve_runtime("cpu")
    loaded = {
        "depth": load_transformers(DepthAnythingForDepthEstimation, AutoImageProcessor, tiny["depth"], op="depth", runtime=rt),
        "detection": load_transformers(Owlv2ForObjectDetection, AutoProcessor, tiny["detection"], op="detection", runtime=rt),
        "pose": load_transformers(VitPoseForPoseEstimation, AutoProcessor, tiny["pose"], op="pose", runtime=rt),
    }
    models = {op: (lm.model, lm.processor) for op, lm in loaded.items()}
    models["masks"] = load_sam(tiny["masks"], "tiny", runtime=rt).model
    for op in args.ops:
        run_op(op, models, images.slice(0, 1), objects, cfg, load)
        start_cpu = time.process_time()
        total, fwd, fwd_cpu = run_op(op, models, images, objects, cfg, load)
        cpu = time.process_time() - start_cpu
        # One torch thread: the forward's CPU time is that of the thread calling it, so the
        # process's CPU time minus it is the CPU spent outside it (prefetch threads included).
        over_cpu = 1000 * (cpu - fwd_cpu) / n
        flag = "ok" if over_cpu <= OVERHEAD_BUDGET_MS else "OVER BUDGET"
        print(f"{op:12s} {over_cpu:6.2f} ms/image CPU outside forward"
              f"   wall outside forward {1000 * (total - fwd) / n:6.2f} ms/image"
              f"  [{flag}: budget {OVERHEAD_BUDGET_MS:.0f} ms/image/core]")
    torch.set_num_threads(threads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=4, help="images for the real-size runs")
    p.add_argument("--overhead-images", type=int, default=48, help="images for the tiny-model overhead run")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--ops", nargs="+", default=["depth", "masks", "detection", "pose"],
                   choices=["depth", "masks", "detection", "pose"])
    p.add_argument("--skip-real", action="store_true", help="only the tiny-model overhead run")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--tiny-dir", default=None, help="tiny model cache (default ~/.cache/sf_platform/tiny_models)")
    args = p.parse_args(argv)
    print("machine:", machine())
    load = image_loader()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_real:
            (folder / "real").mkdir()
            images = make_images(args.images, args.width, args.height, folder / "real")
            bench_real(args, images, make_objects(images), load)
        if not args.skip_overhead:
            (folder / "overhead").mkdir()
            bench_overhead(args, folder, load)


if __name__ == "__main__":
    main()
