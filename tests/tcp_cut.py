"""A loopback TCP link to a real server (Redis, MLflow) that a test can cut and restore.

``cut()`` closes the listening socket and every forwarded connection, so the client sees what it
sees when the server is unreachable (its open connections drop, new ones are refused) while the
server itself keeps running for everyone else; ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpCut:
    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self.port = 0  # chosen by the first listen, kept by every restore
        self.restore()

    def url(self, scheme: str, path: str = "") -> str:
        """What a client connects to instead of the server, e.g. ``url("redis", "/0")``."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def restore(self) -> None:
        """Listen (again) and forward every new connection to the server."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-cut", daemon=True).start()

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for s in [s for s in (listener, *sockets) if s is not None]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                if self._listener is not listener:  # cut while this one was connecting
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


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
