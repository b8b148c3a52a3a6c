"""Prefixed identifiers: the prefix says what the id names."""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    """A new id such as ``ten_3f2a…`` (a UUID4 in hex behind a type prefix)."""
    return f"{prefix}_{uuid.uuid4().hex}"
