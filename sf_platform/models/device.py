"""Pick the device and inference dtype for the GPU ops.

``auto`` takes CUDA when torch sees a GPU (the same code runs on a laptop CPU and on a GPU
node); ``cuda`` without a GPU is a configuration error, not a silent fallback, so a GPU job
that lost its GPU fails loudly instead of running 50x slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> dict[str, str]:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "cpu"
        return {"device": str(self.device), "device_name": name, "dtype": str(self.dtype).replace("torch.", "")}


def resolve_runtime(preference: str = "auto") -> Runtime:
    """``auto`` | ``cpu`` | ``cuda`` -> device and dtype.

    CUDA: bfloat16 where the GPU supports it (Ampere and later: same range as fp32, no overflow
    in attention logits), else float16.  CPU: float32 (bf16 matmuls are slow on most CPUs).
    """
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"models.device must be auto, cpu or cuda, got {preference!r}")
    cuda = torch.cuda.is_available()
    if preference == "cuda" and not cuda:
        raise RuntimeError("models.device is 'cuda' but torch sees no CUDA device")
    if preference == "cpu" or not cuda:
        return Runtime(torch.device("cpu"), torch.float32)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Runtime(torch.device("cuda"), dtype)
