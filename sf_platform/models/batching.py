"""Batched inference with CUDA out-of-memory back-off, and data loading overlapped with it.

- :func:`prefetch` runs the per-item work (fetch, decode, resize, normalise) in a thread pool
  a bounded number of items ahead of the consumer, so the accelerator is not idle while the
  next images are read.  Threads suffice: image decoding and resizing (PIL, numpy, torch) and
  S3 reads release the GIL.
- :class:`BatchRunner` calls a batched forward; on CUDA OOM it halves the batch size, frees
  the cache and retries the same items, down to 1, and keeps the smaller size for the rest of
  the run (the next batch would fail the same way).  The size actually used is reported.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import torch

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 4


def is_oom(exc: BaseException) -> bool:
    """True for CUDA (or other accelerator) out-of-memory errors."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int = DEFAULT_WORKERS, ahead: int | None = None) -> Iterator[R]:
    """Yield ``fn(item)`` in input order, computed by ``workers`` threads up to ``ahead`` items early."""
    ahead = ahead or 2 * workers
    it = iter(items)
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sf-prefetch") as pool:
        pending: collections.deque[cf.Future] = collections.deque()
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(pool.submit(fn, nxt))
            yield result


_END = object()


class BatchRunner:
    """Run ``forward(list_of_inputs) -> list_of_outputs`` in batches with OOM back-off."""

    def __init__(self, forward: Callable[[list], Sequence], batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.forward = forward
        self.requested = batch_size
        self.batch_size = batch_size
        self.backoffs = 0
        self.batches = 0

    def __call__(self, inputs: list) -> list:
        """Run all ``inputs`` (any length) and return their outputs in order."""
        out: list = []
        i = 0
        while i < len(inputs):
            chunk = inputs[i : i + self.batch_size]
            try:
                res = list(self.forward(chunk))
            except Exception as exc:
                if not is_oom(exc) or self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                self.backoffs += 1
                log.warning("out of memory at batch %d; retrying with batch %d", len(chunk), self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            if len(res) != len(chunk):
                raise RuntimeError(f"forward returned {len(res)} outputs for {len(chunk)} inputs")
            out.extend(res)
            self.batches += 1
            i += len(chunk)
        return out

    def meta(self) -> dict[str, int]:
        return {"batch_size": self.requested, "batch_size_used": self.batch_size, "oom_backoffs": self.backoffs, "batches": self.batches}


def stream_batches(items: Iterable[T], batch_size_of: Callable[[], int], key: Callable[[T], object] | None = None) -> Iterator[list[T]]:
    """Group a stream into lists of at most ``batch_size_of()`` items.

    ``key``: items with different keys never share a batch (e.g. images resized to different
    shapes cannot be stacked); feed the stream sorted by key so batches stay full.
    ``batch_size_of`` is read at each batch so an OOM back-off shrinks the following batches.
    """
    buf: list[T] = []
    current = None
    for item in items:
        k = key(item) if key else None
        if buf and (k != current or len(buf) >= batch_size_of()):
            yield buf
            buf = []
        buf.append(item)
        current = k
    if buf:
        yield buf


def run_batches(
    items: Sequence[T],
    prepare: Callable[[T], object],
    forward: Callable[[list], Sequence],
    batch_size: int,
    key: Callable[[object], object] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> tuple[list, BatchRunner]:
    """prepare (threads, overlapped) -> batches (by ``key``) -> forward with OOM back-off.

    Returns the outputs in the order of ``items`` and the runner (for its metadata).
    ``prepare`` may return a list to expand one item into several (e.g. the person crops of
    one image); ``forward`` then sees the expanded elements.
    """
    runner = BatchRunner(forward, batch_size)

    def elements():
        for prepared in prefetch(prepare, items, workers=workers, ahead=max(2 * workers, batch_size + workers)):
            if isinstance(prepared, list):
                yield from prepared
            else:
                yield prepared

    outputs: list = []
    for batch in stream_batches(elements(), lambda: runner.batch_size, key=key):
        outputs.extend(runner(batch))
    return outputs, runner


def ensure_rgb(image, image_id: str = "?"):
    """The loader's output as a C-contiguous ``H x W x 3`` uint8 array, or a clear error.

    Loaders may hand back views (flipped, cropped); processors need contiguous memory.
    """
    import numpy as np

    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"image {image_id!r}: loader must return H x W x 3 uint8, got {a.shape} {a.dtype}")
    if not a.flags.c_contiguous or not a.flags.writeable:  # torch.from_numpy needs both
        a = np.array(a, order="C")
    return a
