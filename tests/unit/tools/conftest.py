"""Fixtures for the tool-cache tests: a fake Go toolchain and a loopback server of fake releases."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tools_testkit import ReleaseServer, publish, write_fake_go


@pytest.fixture
def fake_go(tmp_path: Path) -> Path:
    """A directory holding the fake `go`."""
    return write_fake_go(tmp_path / "fake-go")


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requests.append(self.path)

    def do_GET(self) -> None:
        # /moved/PATH answers 302 -> /PATH, the way GitHub sends release downloads to its file host.
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/moved"))
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[ReleaseServer]:
    """Serve fake releases in their official layouts from 127.0.0.1; stopped after the test."""
    root = tmp_path / "www"
    requests: list[str] = []
    handler = functools.partial(type("Handler", (_Handler,), {"requests": requests}), directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        published = publish(root, f"http://127.0.0.1:{server.server_address[1]}")
        yield ReleaseServer(published, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
