"""Stream the top-level arrays of a huge JSON object in bounded memory, parsed by C parsers.

Objects365's train file (``zhiyuan_objv2_train.json``) is several GB: ``json.load`` would need
tens of GB of Python objects, and a per-token parser such as ijson spends most of its time in
Python.  Instead the bytes of each wanted array (``"images"``, ``"annotations"``, ...) are read
in windows of ``chunk_bytes``; each window is cut after the last ``}`` that is followed by ``,``
or ``]`` and the complete elements before the cut are handed, as one batch, to a C parser
(:mod:`.json_records`):

1. ``pyarrow.json`` (columns straight from C++, no Python object per element) after turning the
   element separators ``},{`` into newlines (NDJSON);
2. ``orjson`` on ``[`` + batch + ``]`` (any element shape, Python objects);
3. the standard library's ``json`` (accepts the ``NaN``/``Infinity`` literals Python writes).

Why the cheap cut is safe: the batch starts at an element boundary, so if any parser accepts
``[batch]`` the cut was at an element boundary too (a proper prefix of a JSON object never
parses as a complete value, and a cut inside a string leaves it unterminated; a raw newline put
into a string by the separator rewrite is itself invalid JSON).  When every parser rejects a
window (a nested ``}`` or a string containing ``},`` sat at the cut, or an element is bigger than
the window), the window is re-cut exactly by a small tokenizer that tracks strings and nesting,
and parsed again; only a genuinely invalid file then fails, with the byte offset in the message.

Memory stays at a few windows whatever the file size: the caller receives Arrow tables batch by
batch and decides what to keep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

DEFAULT_CHUNK_BYTES = 8 << 20
_WS = b" \t\r\n"
_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:', re.DOTALL)
# Tokens that change nesting outside strings, and what ends / escapes inside a string.
_OUTSIDE = re.compile(rb'["\[\]{},]')
_INSIDE = re.compile(rb'["\\]')

T = TypeVar("T")


class JSONStreamError(ValueError):
    """The JSON is invalid or not shaped as expected; the message names the byte offset."""


class ChunkParseError(ValueError):
    """No parser accepted a batch of elements (the caller's cut may have been wrong)."""


class _Buffer:
    """A sliding window over a binary stream: ``data[pos:]`` is what has not been consumed."""

    def __init__(self, f: BinaryIO, chunk_bytes: int):
        self.f = f
        self.chunk = chunk_bytes
        self.data = b""
        self.pos = 0
        self.consumed = 0  # absolute offset of data[0]
        self.eof = False

    def fill(self, n: int) -> bool:
        """Make at least ``n`` unconsumed bytes available if the stream has them."""
        while len(self.data) - self.pos < n and not self.eof:
            more = self.f.read(max(n - (len(self.data) - self.pos), self.chunk))
            if not more:
                self.eof = True
                break
            self.consumed += self.pos
            self.data = self.data[self.pos :] + more
            self.pos = 0
        return len(self.data) - self.pos >= n

    def offset(self) -> int:
        return self.consumed + self.pos

    def skip_ws(self) -> bytes:
        """Skip whitespace; return the next byte (b"" at end of stream) without consuming it."""
        while True:
            if not self.fill(1):
                return b""
            d, p = self.data, self.pos
            while p < len(d) and d[p] in _WS:
                p += 1
            self.pos = p
            if p < len(d):
                return d[p : p + 1]

    def expect(self, ch: bytes) -> None:
        got = self.skip_ws()
        if got != ch:
            raise JSONStreamError(
                f"expected {ch.decode()!r} at byte {self.offset()}, found {got!r}"
            )
        self.pos += 1


def _scan(data: bytes, start: int, depth: int, in_string: bool, track_commas: bool):
    """Tokenize ``data[start:]`` tracking nesting.

    Returns ``(end, last_comma, depth, in_string, resume)``: ``end`` is the index just past the
    byte that closed the value we are in (depth fell below 0), or -1; ``last_comma`` is the
    index of the last ``,`` at depth 0 (an element boundary of the enclosing array), or -1;
    ``resume`` is where to continue once more bytes are appended (a trailing backslash is left
    unconsumed so its escaped byte is not lost at a window edge).
    """
    p = start
    last_comma = -1
    n = len(data)
    while p < n:
        if in_string:
            m = _INSIDE.search(data, p)
            if m is None:
                return -1, last_comma, depth, True, n
            if data[m.start()] == 0x5C:  # backslash: skip the escaped byte
                if m.start() + 1 >= n:
                    return -1, last_comma, depth, True, m.start()
                p = m.start() + 2
                continue
            in_string = False
            p = m.end()
            continue
        m = _OUTSIDE.search(data, p)
        if m is None:
            return -1, last_comma, depth, False, n
        c = data[m.start()]
        p = m.end()
        if c == 0x22:  # "
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
        elif c in (0x5D, 0x7D):  # ] }
            depth -= 1
            if depth < 0:
                return p, last_comma, depth, False, p
        elif depth == 0 and track_commas:
            last_comma = m.start()
    return -1, last_comma, depth, in_string, p


_LITERAL_END = re.compile(rb"[,}\]]")


def _skip_value(buf: _Buffer) -> None:
    """Consume one JSON value of any size (sections nobody asked for: info, licenses...)."""
    first = buf.skip_ws()
    if first == b'"':
        buf.pos += 1
        while (end := _string_end(buf.data, buf.pos)) < 0:
            if not buf.fill(len(buf.data) - buf.pos + 1):
                raise JSONStreamError(f"unterminated string at byte {buf.offset()}")
        buf.pos = end
        return
    if first in (b"{", b"["):
        buf.pos += 1
        depth, in_string = 0, False
        while True:
            end, _, depth, in_string, resume = _scan(buf.data, buf.pos, depth, in_string, False)
            if end >= 0:
                buf.pos = end
                return
            buf.pos = resume
            if not buf.fill(len(buf.data) - buf.pos + 1):
                raise JSONStreamError(f"unterminated value at byte {buf.offset()}")
    while True:  # number, true, false, null
        m = _LITERAL_END.search(buf.data, buf.pos)
        if m is not None:
            buf.pos = m.start()
            return
        if not buf.fill(len(buf.data) - buf.pos + 1):
            raise JSONStreamError(f"unterminated value at byte {buf.offset()}")


def _string_end(data: bytes, p: int) -> int:
    """Index just past the closing quote of the string whose content starts at ``p`` (or -1)."""
    n = len(data)
    while True:
        m = _INSIDE.search(data, p)
        if m is None:
            return -1
        if data[m.start()] == 0x5C:
            if m.start() + 1 >= n:
                return -1
            p = m.start() + 2
            continue
        return m.end()


def _fast_cut(window: bytes) -> int:
    """Index just past the last ``}`` followed by ``,`` / ``]`` in ``window`` (-1 if none)."""
    p = len(window)
    while True:
        p = window.rfind(b"}", 0, p)
        if p < 0:
            return -1
        q = p + 1
        while q < len(window) and window[q] in _WS:
            q += 1
        if q < len(window) and window[q] in b",]":
            return p + 1
        # At the window's edge (follower unknown) or nested: keep looking left.


_ARRAY_END = re.compile(rb"\}\s*\]")


def _fast_cuts(window: bytes) -> list[int]:
    """Cheap cut candidates, most likely first: where the array may end inside the window
    (the first ``}`` followed by ``]``; otherwise the last-element cut would run past it into
    the next section), then the last ``}`` followed by ``,`` / ``]``."""
    cuts = []
    m = _ARRAY_END.search(window)
    if m is not None:
        cuts.append(m.start() + 1)
    last = _fast_cut(window)
    if last > 0 and last not in cuts:
        cuts.append(last)
    return cuts


def _exact_cut(data: bytes, start: int) -> tuple[int, bool]:
    """Exact element boundary in ``data[start:]``: (index of the cut, array ended there)."""
    end, last_comma, _, _, _ = _scan(data, start, 0, False, True)
    if end >= 0:
        # The array closed inside the window: cut just before its ]
        return end - 1, True
    return last_comma, False


def _iter_array(buf: _Buffer, parse: Callable[[bytes], T]) -> Iterator[T]:
    """Yield ``parse(batch)`` for consecutive batches of the array whose ``[`` was consumed."""
    while True:
        nxt = buf.skip_ws()
        if nxt == b"]":
            buf.pos += 1
            return
        if nxt == b",":  # separator left over from the previous batch
            buf.pos += 1
            continue
        if nxt == b"":
            raise JSONStreamError(f"unterminated array at byte {buf.offset()}")
        buf.fill(buf.chunk)
        window = buf.data[buf.pos : buf.pos + buf.chunk]
        result = None
        for cut in _fast_cuts(window):
            try:
                result = parse(window[:cut])
            except ChunkParseError:
                continue
            buf.pos += cut
            break
        if result is not None:
            yield result
            continue
        # Exact path: grow the window until it holds at least one whole element.
        size = buf.chunk
        while True:
            buf.fill(size)
            end, closed = _exact_cut(buf.data, buf.pos)
            if end > buf.pos or closed:
                break
            if buf.eof and len(buf.data) - buf.pos < size:
                raise JSONStreamError(f"unterminated array at byte {buf.offset()}")
            size *= 2
        batch = buf.data[buf.pos : end]
        if batch.strip():
            try:
                result = parse(batch)
            except ChunkParseError as exc:
                raise JSONStreamError(
                    f"invalid JSON in the array batch at byte {buf.offset()}: {exc}"
                ) from None
            buf.pos = end
            yield result
        else:
            buf.pos = end


def iter_arrays(
    f: BinaryIO,
    parsers: dict[str, Callable[[bytes], T]],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[tuple[str, T]]:
    """For a top-level JSON object, yield ``(key, parsers[key](batch))`` for its wanted arrays.

    Keys come in file order (any order works); other keys are skipped in bounded memory.  A
    wanted key whose value is not an array raises :class:`JSONStreamError`.
    """
    buf = _Buffer(f, chunk_bytes)
    buf.expect(b"{")
    if buf.skip_ws() == b"}":
        return
    while True:
        buf.skip_ws()
        buf.fill(64 * 1024)
        m = _KEY.match(buf.data, buf.pos)
        if m is None:
            raise JSONStreamError(f"expected an object key at byte {buf.offset()}")
        key = json.loads(b'"' + m.group(1) + b'"')
        buf.pos = m.end()
        if key in parsers:
            if buf.skip_ws() != b"[":
                raise JSONStreamError(f"section {key!r} must be an array (byte {buf.offset()})")
            buf.pos += 1
            for result in _iter_array(buf, parsers[key]):
                yield key, result
        else:
            _skip_value(buf)
        nxt = buf.skip_ws()
        buf.pos += 1
        if nxt == b"}":
            return
        if nxt != b",":
            raise JSONStreamError(f"expected ',' or '}}' at byte {buf.offset() - 1}, found {nxt!r}")
