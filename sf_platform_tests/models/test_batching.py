"""OOM back-off (simulated with a forward that fails above a batch size) and overlapped loading."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from sf_platform.models.batching import BatchRunner, is_oom, prefetch, run_batches, stream_batches


def oom_above(k: int, exc=torch.cuda.OutOfMemoryError):
    calls: list[int] = []

    def forward(batch):
        calls.append(len(batch))
        if len(batch) > k:
            raise exc("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    return forward, calls


@pytest.mark.parametrize("exc", [torch.cuda.OutOfMemoryError, RuntimeError])
def test_oom_halves_until_it_fits_and_keeps_order(exc):
    forward, calls = oom_above(3, exc)
    runner = BatchRunner(forward, 16)
    assert runner(list(range(20))) == [x * 10 for x in range(20)]
    assert runner.batch_size == 2 and runner.backoffs == 3  # 16 -> 8 -> 4 -> 2
    assert calls[:4] == [16, 8, 4, 2] and all(c <= 2 for c in calls[4:])
    assert runner.meta() == {"batch_size": 16, "batch_size_used": 2, "oom_backoffs": 3, "batches": 10}


def test_oom_at_batch_one_and_other_errors_propagate():
    forward, _ = oom_above(0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        BatchRunner(forward, 4)([1, 2])

    def broken(batch):
        raise ValueError("bad input")

    runner = BatchRunner(broken, 8)
    with pytest.raises(ValueError, match="bad input"):
        runner([1, 2, 3])
    assert runner.batch_size == 8  # not mistaken for OOM


def test_is_oom():
    assert is_oom(torch.cuda.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))


def test_forward_must_return_one_output_per_input():
    with pytest.raises(RuntimeError, match="2 outputs for 3 inputs"):
        BatchRunner(lambda b: b[:2], 3)([1, 2, 3])


def test_prefetch_keeps_order_and_overlaps():
    active, peak = 0, 0
    lock = threading.Lock()

    def slow(x):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return x * x

    t0 = time.perf_counter()
    out = list(prefetch(slow, range(12), workers=4))
    elapsed = time.perf_counter() - t0
    assert out == [x * x for x in range(12)]
    assert peak >= 3  # loads really ran concurrently
    assert elapsed < 12 * 0.05 * 0.6


def test_stream_batches_splits_on_key_and_size():
    items = [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("b", 5)]
    batches = list(stream_batches(items, lambda: 2, key=lambda it: it[0]))
    assert [[v for _, v in b] for b in batches] == [[1, 2], [3], [4, 5]]


def test_run_batches_expands_lists_and_backs_off():
    forward, _ = oom_above(2)
    out, runner = run_batches([1, 2, 3], lambda x: [x, x + 100], forward, batch_size=8)
    assert out == [10, 1010, 20, 1020, 30, 1030]
    assert runner.batch_size == 2


@pytest.mark.faults
def test_simulated_gpu_oom_halves_the_batch_and_every_row_comes_out():
    """The pipeline every op runs (prefetch threads, batches by shape key, OOM back-off): a
    forward that raises torch.cuda.OutOfMemoryError above 3 items finishes with the same rows,
    in the same order, as a forward without the limit."""
    items = list(range(50))

    def prepare(i):  # expand some items into several elements, like person crops of an image
        return [(i, k) for k in range(1 + i % 3)] if i % 5 else (i, 0)

    def key(element):  # elements of different shapes never share a batch (runs of ten items)
        return element[0] // 10

    def forward_limited(limit):
        sizes = []

        def forward(batch):
            sizes.append(len(batch))
            if limit is not None and len(batch) > limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
            return [{"item": i, "part": k, "value": i * 100 + k} for i, k in batch]

        return forward, sizes

    free, free_sizes = forward_limited(None)
    expected, free_runner = run_batches(items, prepare, free, batch_size=16, key=key)
    small, small_sizes = forward_limited(3)
    got, runner = run_batches(items, prepare, small, batch_size=16, key=key)
    assert got == expected and len(got) == sum(1 + i % 3 if i % 5 else 1 for i in items)
    assert free_runner.backoffs == 0 and max(free_sizes) > 3
    assert runner.backoffs == 3 and runner.batch_size == 2 and runner.meta()["batch_size_used"] == 2
    assert small_sizes[:4] == [16, 8, 4, 2] and max(small_sizes[4:]) <= 2
