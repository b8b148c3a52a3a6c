"""The review queue's filter form: query-string values → a ReviewQuery, with readable errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from control_plane.review.schemas import ReviewQuery

QUEUE_FIELDS = (
    "decision",
    "status",
    "score_min",
    "score_max",
    "amount_min",
    "amount_max",
    "since",
    "until",
    "card_token",
    "terminal_id",
    "sort",
    "order",
    "limit",
)


@dataclass
class QueueForm:
    values: dict[str, str]
    query: ReviewQuery | None
    errors: list[str]

    def link(self, **extra: str) -> str:
        params = {k: v for k, v in self.values.items() if v}
        return "/console/queue?" + urlencode({**params, **extra})


def day_start(text: str, field: str, errors: list[str], *, next_day: bool = False) -> str | None:
    try:
        day = date.fromisoformat(text)
        if next_day:
            day += timedelta(days=1)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        errors.append(f"{field}: use a date such as 2026-11-22")
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def queue_form(raw: Mapping[str, str]) -> QueueForm:
    """The filter form's values → a ReviewQuery; dates are whole UTC days, ``until`` inclusive."""
    values = {k: raw.get(k, "").strip() for k in QUEUE_FIELDS}
    values["status"] = values["status"] or "open"
    errors: list[str] = []
    params: dict[str, Any] = {k: v for k, v in values.items() if v and k not in ("status", "since", "until")}
    if values["status"] != "any":
        params["status"] = values["status"]
    if values["since"]:
        params["since"] = day_start(values["since"], "since", errors)
    if values["until"]:
        params["until"] = day_start(values["until"], "until", errors, next_day=True)
    if raw.get("cursor"):
        params["cursor"] = raw["cursor"]
    query = None
    try:
        query = ReviewQuery.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        errors += [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return QueueForm(values=values, query=query if not errors else None, errors=errors)
