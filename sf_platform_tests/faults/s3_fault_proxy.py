"""A fault-injecting HTTP proxy in front of the moto S3 endpoint, on loopback.

Clients talk to the proxy exactly as to S3 (``endpoint_url`` = the proxy).  For a share of the
requests it answers for S3 instead of forwarding:

- ``500 InternalError`` (an S3 node failing),
- ``503 SlowDown`` (S3 throttling a prefix),
- or it reads the request and closes the connection without a byte of answer (a dropped
  connection), before forwarding it (``drop_share``) or after S3 executed it
  (``lost_reply_share``: the write happened, the client cannot know it).

Which requests fail is drawn from ``random.Random(seed)`` in arrival order, so a run is
reproducible.  ``fail_after`` makes every request after the first N fail (storage gone for
good), ``max_faults`` stops injecting after N faults, and ``methods`` / ``path_filter`` limit
the faults (and the counting of ``fail_after``) to some HTTP methods and to paths containing a
string (e.g. the final keys of a release, or its manifest).
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlparse

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message></Error>")


class FaultProxy:
    def __init__(self, upstream: str, seed: int = 0, error_share: float = 0.0, slowdown_share: float = 0.0,
                 drop_share: float = 0.0, lost_reply_share: float = 0.0, methods: tuple[str, ...] | None = None):
        self.upstream = urlparse(upstream)
        self.rng = random.Random(seed)
        self.error_share, self.slowdown_share, self.drop_share = error_share, slowdown_share, drop_share
        self.lost_reply_share = lost_reply_share
        self.methods = methods
        self.fail_after: int | None = None
        self.max_faults: int | None = None
        self.path_filter: str | None = None
        self.counts: Counter = Counter()  # "forwarded", "500", "503", "drop"
        self._lock = threading.Lock()
        self._seen = self._faults = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._draw(self.command, self.path)
                proxy.counts[fault or "forwarded"] += 1  # "lost_reply" is forwarded too
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault in ("500", "503"):
                    payload = INTERNAL if fault == "500" else SLOWDOWN
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body if length else None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if fault == "lost_reply":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                # a HEAD answer has no body but S3's Content-Length (the object's size)
                size = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", size or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _draw(self, method: str, path: str) -> str | None:
        with self._lock:
            if self.methods is not None and method not in self.methods:
                return None
            if self.path_filter is not None and self.path_filter not in path:
                return None
            if self.max_faults is not None and self._faults >= self.max_faults:
                return None
            self._seen += 1
            fault = None
            if self.fail_after is not None and self._seen > self.fail_after:
                fault = "500"
            else:
                x, edge = self.rng.random(), 0.0
                for name, share in (("500", self.error_share), ("503", self.slowdown_share),
                                    ("drop", self.drop_share), ("lost_reply", self.lost_reply_share)):
                    edge += share
                    if x < edge:
                        fault = name
                        break
            self._faults += fault is not None
            return fault

    def configure(self, **kw) -> Self:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, v)
            if "seed" in kw:
                self.rng = random.Random(kw["seed"])
            self._seen = self._faults = 0
        return self

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
