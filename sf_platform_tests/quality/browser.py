"""Drive headless Debian chromium over the DevTools protocol: load a page, collect console
errors, failed and external requests, every image's natural size, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--window-size=1400,1000"]

IMAGES_JS = """JSON.stringify([...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete,
  w: i.naturalWidth, h: i.naturalHeight})))"""


@dataclass
class PageReport:
    images: list[dict]
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)
    screenshot: bytes = b""


class _Session:
    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)


def inspect_page(path: str, user_data_dir: str, dom_js: str | None = None) -> PageReport:
    """Open ``path`` (a local HTML file) in headless chromium and report what it saw."""
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-port=0",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = _devtools_port(proc, user_data_dir)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        s = _Session(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            s.call(f"{domain}.enable")
        s.call("Page.navigate", url="file://" + os.path.abspath(path))
        s.wait_for("Page.loadEventFired")
        images = json.loads(s.call("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)["result"]["value"])
        dom = {}
        if dom_js:
            dom = json.loads(s.call("Runtime.evaluate", expression=dom_js, returnByValue=True)["result"]["value"])
        metrics = s.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = s.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                      clip={"x": 0, "y": 0, "width": metrics["width"], "height": min(metrics["height"], 12000), "scale": 1})
        report = PageReport(images=images, dom=dom, screenshot=base64.b64decode(shot["data"]))
        for e in s.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                report.console_errors.append(json.dumps(p.get("exceptionDetails", {}))[:300])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                report.console_errors.append(str(p.get("args"))[:300])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                report.console_errors.append(p["entry"].get("text", "")[:300])
            elif m == "Network.loadingFailed":
                report.failed_requests.append(f"{p.get('errorText')} {p.get('requestId')}")
            elif m == "Network.requestWillBeSent":
                report.requested.append(p["request"]["url"])
        s.ws.close()
        return report
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _devtools_port(proc: subprocess.Popen, user_data_dir: str, timeout: float = 30.0) -> int:
    """Chromium writes its DevTools port to <user-data-dir>/DevToolsActivePort (and to stderr)."""
    marker = os.path.join(user_data_dir, "DevToolsActivePort")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(marker):
            with open(marker) as f:
                first = f.readline().strip()
            if first.isdigit():
                return int(first)
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


def external(urls: list[str]) -> list[str]:
    return [u for u in urls if not re.match(r"^(file:|data:|about:)", u)]
