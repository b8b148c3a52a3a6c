"""Imports every ORM module so metadata (Alembic, tests) sees all tables."""

from control_plane.audit.orm import AuditEvent
from control_plane.auth.orm import ApiKey
from control_plane.jobs.orm import Job
from control_plane.orm_base import Base
from control_plane.providers.local.flagged_store import FlaggedTransactionRow
from control_plane.tenants.orm import Tenant

__all__ = ["ApiKey", "AuditEvent", "Base", "FlaggedTransactionRow", "Job", "Tenant"]
