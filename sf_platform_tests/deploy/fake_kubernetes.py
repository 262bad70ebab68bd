"""A stand-in Kubernetes API server on 127.0.0.1 that records the Jobs it is asked to create.

dagster-k8s' real client (loaded from a kubeconfig that points here) serializes each Job and
POSTs it, exactly as it would to a cluster; the server answers 201 with the same body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml


@contextmanager
def fake_kubernetes(tmp_path: Path) -> Iterator[tuple[Path, list[dict]]]:
    """Yields (kubeconfig file, list that receives each created Job as a dict)."""
    created: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if "/apis/batch/v1/namespaces/" in self.path and self.path.endswith("/jobs"):
                created.append(json.loads(body))
                self.send_response(201)
            else:
                self.send_response(404)
                body = b"{}"
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "sf"}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
    }))
    try:
        yield kubeconfig, created
    finally:
        server.shutdown()
        server.server_close()
