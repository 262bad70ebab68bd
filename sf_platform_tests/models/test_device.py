from __future__ import annotations

import pytest
import torch

from sf_platform.models.device import resolve_runtime


def test_cpu_is_float32():
    rt = resolve_runtime("cpu")
    assert rt.device.type == "cpu" and rt.dtype == torch.float32
    assert rt.describe() == {"device": "cpu", "device_name": "cpu", "dtype": "float32"}


def test_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_runtime("auto").device.type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    rt = resolve_runtime("auto")
    assert rt.device.type == "cuda" and rt.dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_runtime("auto").dtype == torch.float16


def test_cuda_without_gpu_and_bad_values_fail(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_runtime("cuda")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        resolve_runtime("tpu")
