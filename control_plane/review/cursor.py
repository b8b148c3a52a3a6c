"""Opaque keyset cursors: the sort key's value and the id of the last item on a page.

A cursor names the sort it was made for, so one from another sort is refused rather than
silently skipping items. Keyset pages are stable under inserts: an item added while someone
pages appears on a later page or not at all, and never shifts what they have not seen yet.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from control_plane.errors import InvalidInput
from control_plane.orm_base import utc_representable
from control_plane.review.orm import ReviewItem

SortValue = float | Decimal | datetime
MAX_ID = 40  # review_items.id is String(40)
MAX_AMOUNT = Decimal(10) ** 14  # review_items.amount is Numeric(18, 4)


@dataclass(frozen=True)
class Cursor:
    sort: str
    order: str
    value: SortValue
    id: str


def sort_value(item: ReviewItem, sort: str) -> SortValue:
    if sort == "score":
        return item.score
    if sort == "amount":
        return item.amount
    return item.txn_ts


def encode(item: ReviewItem, sort: str, order: str) -> str:
    value = sort_value(item, sort)
    raw: float | str
    if isinstance(value, float):
        raw = value  # JSON keeps a float's exact value (repr round-trips)
    elif isinstance(value, datetime):
        raw = value.isoformat()
    else:
        raw = str(value)
    doc = {"k": sort, "o": order, "v": raw, "i": item.id}
    data = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode(token: str, sort: str, order: str) -> Cursor:
    """Parse a cursor made for this sort; 422 naming ``cursor`` otherwise."""
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(doc, dict) or not isinstance(doc.get("i"), str):
            raise ValueError("not a cursor")
        if len(doc["i"]) > MAX_ID or "\x00" in doc["i"]:
            raise ValueError("not an item id")
        value: SortValue
        if doc["k"] == "score":
            value = float(doc["v"])
            if not math.isfinite(value):
                raise ValueError("score out of range")
        elif doc["k"] == "amount":
            value = Decimal(str(doc["v"]))
            if not value.is_finite() or abs(value) >= MAX_AMOUNT:
                raise ValueError("amount out of range")
        elif doc["k"] == "age":
            value = datetime.fromisoformat(str(doc["v"]))
            if value.tzinfo is None:
                raise ValueError("naive time")
            utc_representable(value)
        else:
            raise ValueError("unknown sort")
    except (ValueError, KeyError, TypeError, InvalidOperation, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API issued", field="cursor") from exc
    if doc["k"] != sort or doc.get("o") != order:
        raise InvalidInput(
            f"cursor was made for sort={doc['k']} order={doc.get('o')}; use it with the same sort",
            field="cursor",
        )
    return Cursor(sort=sort, order=order, value=value, id=doc["i"])
