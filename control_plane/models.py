"""Imports every ORM module so metadata (Alembic, tests) sees all tables."""

from control_plane.audit.orm import AuditEvent
from control_plane.auth.orm import ApiKey
from control_plane.datasets.orm import Dataset
from control_plane.finops.orm import BudgetMonth, UsageDaily, UsageEvent
from control_plane.jobs.orm import Job
from control_plane.orm_base import Base
from control_plane.providers.local.flagged_store import FlaggedTransactionRow
from control_plane.registry.orm import ModelVersion
from control_plane.review.orm import LabelOutboxRow, ReviewItem
from control_plane.rollouts.orm import Rollout
from control_plane.scoring.orm import ScoringConfig
from control_plane.slo.orm import RequestSample
from control_plane.tenants.orm import Tenant

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "BudgetMonth",
    "Dataset",
    "FlaggedTransactionRow",
    "Job",
    "LabelOutboxRow",
    "ModelVersion",
    "RequestSample",
    "ReviewItem",
    "Rollout",
    "ScoringConfig",
    "Tenant",
    "UsageDaily",
    "UsageEvent",
]
