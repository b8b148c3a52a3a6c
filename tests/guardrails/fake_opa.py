"""A stand-in OPA server: the slice of OPA's REST API the adapter uses, evaluated with regopy.

PUT  /v1/policies/{id}  -> 200 {} (400 with OPA's error shape when the module does not compile)
PUT  /v1/data/{path}    -> 204
POST /v1/data/{path}    -> 200 {"result": ...}, or {} when undefined; 500 on evaluation errors
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import regopy

from guardrails.policy import new_interpreter


class FakeOpa:
    def __init__(self) -> None:
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.requests: list[tuple[str, str]] = []
        self.inputs: list[Any] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpa:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def forget(self) -> None:
        """Lose policies and data, as an OPA restarted without bundles would."""
        with self._lock:
            self.policies.clear()
            self.data.clear()

    def put_policy(self, policy_id: str, source: str) -> str | None:
        with self._lock:
            candidate = {**self.policies, policy_id: source}
            try:
                interpreter = new_interpreter()
                for pid, module in candidate.items():
                    interpreter.add_module(pid, module)
            except regopy.RegoError as exc:
                return str(exc)
            self.policies = candidate
            return None

    def put_data(self, path: list[str], value: Any) -> None:
        with self._lock:
            node = self.data
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value

    def query(self, path: list[str], input_doc: Any, strict: bool) -> tuple[bool, Any]:
        """(defined, value) of ``data.<path>``; raises RuntimeError on evaluation errors."""
        with self._lock:
            interpreter = new_interpreter(strict=strict)
            interpreter.add_data(self.data)
            for pid, module in self.policies.items():
                interpreter.add_module(pid, module)
        interpreter.set_input_term(json.dumps(input_doc, ensure_ascii=False))
        output = interpreter.query("data." + ".".join(path))
        if not output.ok():
            raise RuntimeError(str(output))
        expressions = output.results[0].expressions if output.results else []
        return (True, expressions[0]) if expressions else (False, None)


def _handler_for(fake: FakeOpa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _reply(self, status: int, body: Any = None) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_PUT(self) -> None:
            parts = urlsplit(self.path)
            fake.requests.append(("PUT", parts.path))
            body = self._body()
            if parts.path.startswith("/v1/policies/"):
                error = fake.put_policy(parts.path.removeprefix("/v1/policies/"), body.decode())
                if error is None:
                    self._reply(200, {})
                else:
                    message = "error(s) occurred while compiling module(s)"
                    detail = [{"code": "rego_parse_error", "message": error[:500]}]
                    self._reply(400, {"code": "invalid_parameter", "message": message, "errors": detail})
            elif parts.path.startswith("/v1/data/"):
                fake.put_data(parts.path.removeprefix("/v1/data/").split("/"), json.loads(body))
                self._reply(204)
            else:
                self._reply(404, {"code": "not_found", "message": self.path})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            fake.requests.append(("POST", parts.path))
            if not parts.path.startswith("/v1/data/"):
                self._reply(404, {"code": "not_found", "message": self.path})
                return
            document = json.loads(self._body() or b"{}")
            fake.inputs.append(document.get("input"))
            strict = parse_qs(parts.query).get("strict-builtin-errors") == ["true"]
            try:
                defined, value = fake.query(
                    parts.path.removeprefix("/v1/data/").split("/"), document.get("input"), strict
                )
            except (RuntimeError, regopy.RegoError) as exc:
                self._reply(500, {"code": "internal_error", "message": str(exc)})
                return
            self._reply(200, {"result": value} if defined else {})

    return Handler
