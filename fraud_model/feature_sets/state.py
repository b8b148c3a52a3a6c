"""One entity's online state and its compact serialised form.

A busy entity (an e-mail domain, a shared terminal) retains thousands of events, and every check
that touches it reads and writes its state: the form decides the hot path's cost, and what costs
is making one Python object per retained value. Two forms, chosen by size when written:

- up to ``SMALL_EVENTS`` events (most entities): one orjson list of plain lists, the cheapest for a
  few values (also the form every state had before the compact one, so cached states still read);
- above: the compact form. Numeric columns (times, amount units, ``where`` flags, labels) are
  machine arrays copied in and out as raw bytes, and text columns (distinct-count values,
  transaction ids) stay one joined string (:class:`TextColumn`) that a check splits only where it
  reads: the tail inside a window, the head it forgets.

    magic (4 bytes) | header length (4, little-endian) | header (orjson) | numeric sections

  The header names each column with its length and carries the text columns; the sections follow
  in header order: ``ts`` (int64), each unit column (int64), each flag column (int8), ``labels``
  (int8), in this machine's byte order (swapped when read on the other).

Numeric columns are lists or arrays and text columns lists or :class:`TextColumn` (the ``text_*``
helpers take either): the engine's operations are the same on both.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, MutableSequence
from dataclasses import dataclass, field
from typing import Any

import orjson

MAGIC = b"\xfeES2"
SMALL_EVENTS = 128  # measured: below this the compact form's fixed cost outweighs its savings
_LITTLE = sys.byteorder == "little"
# DEL: not expected in an identifier, country or category, and JSON leaves it unescaped. A value
# holding one puts its column in list form (exact either way, only slower).
SEP = "\x7f"


class TextColumn:
    """A sequence of texts (``optional``: None allowed, kept as the empty string, which no text
    value is) held joined by SEP, or as a list once an operation needs one."""

    __slots__ = ("_items", "_n", "_text", "optional")

    def __init__(self, items: Iterable[str | None] = (), *, optional: bool = True) -> None:
        self.optional = optional
        self._items: list[str | None] | None = list(items)
        self._text = ""
        self._n = 0

    @classmethod
    def joined(cls, text: str, n: int, *, optional: bool) -> TextColumn:
        column = cls(optional=optional)
        column._items, column._text, column._n = None, text, n
        return column

    def __len__(self) -> int:
        return self._n if self._items is None else len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextColumn) and self.as_list() == other.as_list()

    def __repr__(self) -> str:
        return f"TextColumn({self.as_list()!r})"

    def _decode(self, parts: list[str]) -> list[str | None]:
        return [p or None for p in parts] if self.optional else list(parts)

    def as_list(self) -> list[str | None]:
        if self._items is None:
            self._items = self._decode(self._text.split(SEP)) if self._n else []
            self._text, self._n = "", 0
        return self._items

    def _tail(self, k: int) -> list[str]:
        """The last ``k`` raw pieces of the joined text (only those are split off)."""
        if k <= 0:
            return []
        return self._text.rsplit(SEP, k)[-k:] if k < self._n else self._text.split(SEP)

    def slice(self, lo: int, end: int) -> list[str | None]:
        """Items ``lo:end``: only the tail from ``lo`` is split (a window ends at or near the newest)."""
        lo = max(0, lo)
        if self._items is not None:
            return self._items[lo:end]
        end = min(end, self._n)
        return self._decode(self._tail(self._n - lo)[: max(0, end - lo)])

    def insert(self, pos: int, value: str | None) -> None:
        if value is None and not self.optional:
            raise ValueError("this column holds no missing values")
        if self._items is not None or (value is not None and SEP in value):
            self.as_list().insert(pos, value)
            return
        piece, n = value or "", self._n
        if not n:
            self._text = piece
        elif pos >= n:
            self._text = f"{self._text}{SEP}{piece}"
        elif pos <= 0:
            self._text = f"{piece}{SEP}{self._text}"
        else:  # a late transaction: only the pieces after it are split off and joined again
            head, *tail = self._text.rsplit(SEP, n - pos)
            self._text = SEP.join([head, piece, *tail])
        self._n = n + 1

    def drop_first(self, cut: int) -> None:
        if cut <= 0:
            return
        if self._items is not None:
            del self._items[:cut]
        elif cut >= self._n:
            self._text, self._n = "", 0
        else:
            self._text, self._n = self._text.split(SEP, cut)[cut], self._n - cut

    def stored(self) -> str | list[str | None]:
        if self._items is None:
            return self._text
        items = self._items
        texts = [x or "" for x in items] if None in items else items  # the scan for None is in C
        joined = SEP.join(texts)  # type: ignore[arg-type]
        # A value holding the separator would split wrongly: the column is stored as a list.
        return items if joined.count(SEP) != max(0, len(items) - 1) else joined

    @classmethod
    def from_stored(cls, stored: Any, n: int, *, optional: bool) -> TextColumn:
        if isinstance(stored, list):
            return cls(stored, optional=optional)
        return cls.joined(str(stored), int(n), optional=optional)


Ints = MutableSequence[int]  # a list, or an array once read from the compact form
Texts = list[str | None] | TextColumn


def text_slice(column: Texts, lo: int, end: int) -> list[str | None]:
    return column[lo:end] if isinstance(column, list) else column.slice(lo, end)


def text_insert(column: Texts, pos: int, value: str | None) -> None:
    column.insert(pos, value)


def text_drop_first(column: Texts, cut: int) -> None:
    if isinstance(column, list):
        del column[:cut]
    else:
        column.drop_first(cut)


def text_list(column: Texts) -> list[str | None]:
    return column if isinstance(column, list) else column.as_list()


@dataclass(slots=True)
class EntityState:
    """One entity's retained events (time order) and the time of its latest transaction."""

    ts: Ints = field(default_factory=list)
    units: dict[str, Ints] = field(default_factory=dict)
    values: dict[str, Texts] = field(default_factory=dict)
    flags: dict[str, Ints] = field(default_factory=dict)
    txn_ids: Texts = field(default_factory=list)
    labels: Ints = field(default_factory=list)
    last_ts: int | None = None

    def to_bytes(self) -> bytes:
        if len(self.ts) <= SMALL_EVENTS:
            return orjson.dumps(
                [
                    _plain(self.ts),
                    {k: _plain(v) for k, v in self.units.items()},
                    {k: text_list(v) for k, v in self.values.items()},
                    {k: _plain(v) for k, v in self.flags.items()},
                    text_list(self.txn_ids),
                    _plain(self.labels),
                    self.last_ts,
                ]
            )
        head = {
            "last": self.last_ts,
            "ts": len(self.ts),
            "units": [[k, len(v)] for k, v in self.units.items()],
            "flags": [[k, len(v)] for k, v in self.flags.items()],
            "labels": len(self.labels),
            "values": [[k, len(v), _stored(v)] for k, v in self.values.items()],
            "ids": [len(self.txn_ids), _stored(self.txn_ids)],
        }
        header = orjson.dumps(head)
        parts = [MAGIC, struct.pack("<I", len(header)), header, _raw(self.ts, "q")]
        parts += [_raw(v, "q") for v in self.units.values()]
        parts += [_raw(v, "b") for v in self.flags.values()]
        parts.append(_raw(self.labels, "b"))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> EntityState:
        if not data.startswith(MAGIC):
            ts, unit_cols, value_cols, flag_cols, ids, labels, last = orjson.loads(data)
            return cls(ts, unit_cols, value_cols, flag_cols, ids, labels, last)
        view = memoryview(data)
        (size,) = struct.unpack_from("<I", data, len(MAGIC))
        off = len(MAGIC) + 4
        head = orjson.loads(view[off : off + size])
        off += size

        def take(code: str, n: int) -> array[int]:
            nonlocal off
            out = array(code)
            end = off + n * out.itemsize
            out.frombytes(view[off:end])
            off = end
            if not _LITTLE:
                out.byteswap()
            return out

        ts = take("q", head["ts"])
        unit_cols = {k: take("q", n) for k, n in head["units"]}
        flag_cols = {k: take("b", n) for k, n in head["flags"]}
        labels = take("b", head["labels"])
        value_cols = {k: TextColumn.from_stored(s, n, optional=True) for k, n, s in head["values"]}
        n_ids, ids = head["ids"]
        txn_ids = TextColumn.from_stored(ids, n_ids, optional=False)
        return cls(ts, unit_cols, value_cols, flag_cols, txn_ids, labels, head["last"])


def _plain(values: Ints) -> list[int]:
    return values if isinstance(values, list) else values.tolist()  # type: ignore[attr-defined]


def _stored(column: Texts) -> str | list[str | None]:
    return column.stored() if isinstance(column, TextColumn) else TextColumn(column).stored()


def _raw(values: Ints, code: str) -> bytes:
    out = values if isinstance(values, array) else array(code, values)
    if _LITTLE:
        return out.tobytes()
    swapped = array(code, out)
    swapped.byteswap()
    return swapped.tobytes()
