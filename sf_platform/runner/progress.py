"""The one progress display of ``sf-platform run``: shards done of total, images/s, ETA, failures.

Dagster's event stream goes to a log file; the terminal gets this.  On a terminal the line is
redrawn in place; in a pipe or CI log a line is printed whenever a run ends (and a heartbeat every
``interval`` seconds while nothing ends), so the output stays short and readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


@dataclass
class Progress:
    total_shards: int
    total_images: int
    echo: Callable[[str], None] = print
    interactive: bool = field(default_factory=lambda: sys.stdout.isatty())
    interval: float = 60.0
    done_shards: int = 0
    done_images: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # shard -> cause
    started: float = field(default_factory=time.monotonic)
    _last: float = 0.0

    def advance(self, shards: list[str], images: int, ok: bool, cause: str = "") -> None:
        self.done_shards += len(shards)
        self.done_images += images
        if not ok:
            for s in shards:
                self.failed[s] = cause
        self.show(force=True)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done_images / elapsed
        left = self.total_images - self.done_images
        eta = _duration(left / rate) if rate > 0 and left > 0 else ("0s" if left <= 0 else "?")
        text = (f"[run] shards {self.done_shards}/{self.total_shards} · {rate:,.1f} images/s · "
                f"elapsed {_duration(elapsed)} · ETA {eta}")
        if self.failed:
            text += f" · {len(self.failed)} failed"
        return text

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.interactive:
            sys.stdout.write("\r\033[K" + self.line())
            sys.stdout.flush()
        else:
            self.echo(self.line())

    def finish(self) -> None:
        if self.interactive:
            sys.stdout.write("\n")
        for shard, cause in sorted(self.failed.items()):
            self.echo(f"[run] FAILED {shard}: {cause}")
