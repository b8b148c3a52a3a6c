"""A loopback TCP link to Redis that a test can cut: one server loses its bus while the other keeps it."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class RedisCut:
    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}{parts.path}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._open = True
        threading.Thread(target=self._accept, name="redis-cut", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if not self._open:
                    client.close()
                    continue
                upstream = socket.create_connection(self._upstream)
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (the client sees a Redis outage)."""
        with self._lock:
            self._open = False
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Accept connections again."""
        with self._lock:
            self._open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
