"""A lease lock in the object store: one holder at a time, on a local folder or on S3 alike.

Why a lease lock and not only a create-if-absent marker: publishing a release on S3 is many
server-side copies (S3 has no rename) followed by the manifest; two publishers copying into
the same final keys would interleave, so the copies themselves must be exclusive, and a holder
that dies mid-copy must not block the version forever.

How it works (no compare-and-delete needed, which S3 lacks):

- Each acquisition creates a *new* key ``<prefix>/<generation>.json`` (generation = 8 digits)
  with create-if-absent (:meth:`ObjectStore.create_bytes`); of two processes racing for the
  same generation exactly one wins.  The holder is the owner of the highest generation.
- The record says who holds it (a random token, host, pid) and until when (``expires``,
  epoch seconds).  The holder renews it while it works; it releases it by rewriting its own
  record with ``released: true``.
- A newcomer finding the highest record released, expired, or held by a dead process on its
  own host (``pid`` gone: a SIGKILLed run is detected at once instead of after the lease)
  takes over by creating the next generation; a live lease makes it fail at once with
  :class:`LockHeld`, naming the holder and the expiry.

The lease (default :data:`DEFAULT_LEASE_S`) bounds how long a holder killed on another machine
blocks the next run; the holder renews at half-lease, so a live holder never loses it unless
it stalls for a whole lease.  Records of older generations are deleted by the next holder.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Self

from sf_platform.storage.object_store import ObjectStore

# Five minutes: far longer than one server-side copy or manifest write (the holder renews
# between them), short enough that a release killed on another machine is retried the same
# hour without anyone deleting a lock by hand.
DEFAULT_LEASE_S = 300.0


class LockHeld(RuntimeError):
    """Another live process holds the lock; the message names it and when its lease ends."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LeaseLock:
    store: ObjectStore
    prefix: str  # e.g. release/.locks/v1 (sf_platform.storage.layout.release_lock_prefix)
    lease_s: float = DEFAULT_LEASE_S
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    generation: int | None = None
    _renewed: float = 0.0

    def _key(self, gen: int) -> str:
        return f"{self.prefix}/{gen:08d}.json"

    def _record(self, released: bool = False) -> bytes:
        now = time.time()
        rec = {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
               "acquired": now, "expires": now + self.lease_s, "released": released}
        return json.dumps(rec, sort_keys=True).encode()

    def _newest(self) -> tuple[int, dict | None]:
        gens = self._generations()
        if not gens:
            return -1, None
        g = gens[-1]
        try:
            return g, json.loads(self.store.read_text(self._key(g)))
        except (FileNotFoundError, ValueError):
            return g, None  # unreadable or vanished record: treat as free, the next create decides

    def _generations(self) -> list[int]:
        gens = []
        for k in self.store.list(self.prefix, ".json"):
            stem = k.rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                gens.append(int(stem))
        return sorted(gens)

    def _free(self, rec: dict | None) -> bool:
        if rec is None or rec.get("released") or rec.get("expires", 0) < time.time():
            return True
        return rec.get("host") == socket.gethostname() and not pid_alive(int(rec.get("pid", -1)))

    def acquire(self) -> Self:
        gen, rec = self._newest()
        if not self._free(rec):
            left = rec["expires"] - time.time()
            raise LockHeld(
                f"{self.store.uri(self._key(gen))} is held by pid {rec.get('pid')} on {rec.get('host')} "
                f"for another {left:.0f} s (lease {self.lease_s:.0f} s)")
        data = self._record()
        try:
            self.store.create_bytes(self._key(gen + 1), data)
        except FileExistsError:
            # Lost the race for this generation, unless a retried PUT of ours landed twice.
            found = json.loads(self.store.read_text(self._key(gen + 1)))
            if found.get("token") != self.token:
                raise LockHeld(f"{self.store.uri(self._key(gen + 1))} was just taken by pid "
                               f"{found.get('pid')} on {found.get('host')}") from None
        self.generation, self._renewed = gen + 1, time.time()
        for old in self._generations():  # earlier holders' records: keep the key space small
            if old < self.generation:
                self.store.delete(self._key(old))
        return self

    def check(self) -> None:
        """Renew the lease when half of it has passed; raise if another process took over."""
        if self.generation is None:
            raise LockHeld(f"{self.prefix}: not acquired")
        gen, rec = self._newest()
        if gen != self.generation or (rec or {}).get("token") != self.token:
            raise LockHeld(f"{self.store.uri(self._key(gen))}: lease lost to another process")
        if time.time() - self._renewed > self.lease_s / 2:
            self.store.write_bytes(self._key(self.generation), self._record())
            self._renewed = time.time()

    def release(self) -> None:
        if self.generation is not None:
            gen, rec = self._newest()
            if gen == self.generation and (rec or {}).get("token") == self.token:
                self.store.write_bytes(self._key(self.generation), self._record(released=True))
            self.generation = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
