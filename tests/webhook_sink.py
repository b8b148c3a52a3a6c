"""A loopback HTTP receiver for webhook tests: records every request, answers from a script.

Responses per path are scripted (``script("/teams", Reply(500), Reply(500))``: the first two
requests get 500, later ones the default); the default answer is 200 with ``"1"`` under a path
containing ``teams`` (a legacy Teams connector's success body) and ``"ok"`` elsewhere (Slack's).
Tests wait on a condition (``wait_for``), never with fixed sleeps.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class WebhookSink:
    """Threaded HTTP server on ``127.0.0.1:<free port>``; use as a context manager."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._received: list[Received] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        sink = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                reply = sink._record_and_pick(
                    Received(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                data = reply.body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_POST = _serve
            do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="webhook-sink",
            daemon=True,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- scripting -----------------------------------------------------------------------------
    def script(self, path: str, *replies: Reply) -> None:
        """Queue ``replies`` for the next requests to ``path``, in order."""
        with self._cond:
            self._scripts[path].extend(replies)

    def default(self, path: str, reply: Reply) -> None:
        """The answer for ``path`` once its script is used up."""
        with self._cond:
            self._defaults[path] = reply

    def _record_and_pick(self, request: Received) -> Reply:
        with self._cond:
            self._received.append(request)
            self._cond.notify_all()
            queue = self._scripts.get(request.path)
            if queue:
                return queue.popleft()
            if request.path in self._defaults:
                return self._defaults[request.path]
            return Reply(200, "1" if "teams" in request.path else "ok")

    # -- inspection ----------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[Received]:
        with self._cond:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(self, count: int, timeout: float = 5.0, path: str | None = None) -> list[Received]:
        """Block until at least ``count`` requests (to ``path``) arrived; fail after ``timeout``."""

        def matching() -> list[Received]:
            return [r for r in self._received if path is None or r.path == path]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} request(s) to {path or 'any path'}; "
                    f"got {len(matching())}"
                )
            return matching()


def closed_port_url(path: str = "/closed") -> str:
    """A loopback URL nothing listens on (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
