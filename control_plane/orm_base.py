"""Declarative base of the domains' tables; column types come from ``providers.sql_types``; the
UTC time helpers every domain's tables and their readers share."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from providers.sql_types import NAMING_CONVENTION, UTCDateTime, utcnow

__all__ = ["Base", "UTCDateTime", "aware", "utc_representable", "utcnow"]


def aware(at: datetime) -> datetime:
    """``at`` as an aware time: a naive one is taken to be UTC (the columns store UTC), an aware
    one is returned unchanged."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def utc_representable(value: datetime) -> datetime:
    """``value`` unchanged if a UTC column can store it; ValueError (a 422 in a model) otherwise.

    An aware time near year 1 or 9999 (``9999-12-31T23:59:59-12:00``) has no UTC equivalent.
    """
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from exc
    return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
