"""Object store on the local file system (atomic writes, keys as relative paths)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if self._root not in path.parents:
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        return path.read_bytes()

    def local_path(self, key: str) -> Path | None:
        """The file holding ``key`` (for memory-mapping it), or None when there is none."""
        path = self._path(key)
        return path if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _files(self, prefix: str) -> list[tuple[str, Path]]:
        base = self._root / prefix
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return []
        found = []
        for path in start.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    found.append((key, path))
        return sorted(found)

    def list(self, prefix: str) -> list[str]:
        return [key for key, _ in self._files(prefix)]

    def total_bytes(self, prefix: str) -> int:
        total = 0
        for _, path in self._files(prefix):
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # deleted since the listing
                continue
        return total

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        base = self._root / prefix
        if prefix.endswith("/") and base.is_dir():
            shutil.rmtree(base, ignore_errors=True)
        return len(keys)
