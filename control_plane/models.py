"""Imports every ORM module so metadata (Alembic, tests) sees all tables."""

from control_plane.audit.orm import AuditEvent
from control_plane.auth.orm import ApiKey
from control_plane.datasets.feature_set_orm import FeatureSetVersion
from control_plane.datasets.orm import Dataset
from control_plane.finops.orm import BudgetMonth, UsageDaily, UsageEvent
from control_plane.jobs.orm import Job
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, TransactionLabel
from control_plane.orm_base import Base
from control_plane.outbox.orm import OutboxEvent
from control_plane.registry.orm import ModelVersion
from control_plane.review.orm import ReviewItem
from control_plane.rollouts.orm import Rollout
from control_plane.scoring.orm import ScoringConfig
from control_plane.slo.orm import RequestSample
from control_plane.tenants.orm import Tenant
from control_plane.training.orm import Retraining, RetrainingSettings
from control_plane.users.oidc_orm import OidcFlow, TenantOidcConfig
from control_plane.users.orm import User, UserSession
from control_plane.web.session import ConsoleSessionRow
from providers.local.flagged_store import AdapterBase, FlaggedTransactionRow

# Every table Alembic migrates: the domains' and the SQL adapters'.
ALL_METADATA = (Base.metadata, AdapterBase.metadata)


def all_tables_dependents_first() -> list[str]:
    """Table names, each before the tables it references (for emptying them in order)."""
    return [t.name for md in ALL_METADATA for t in reversed(md.sorted_tables)]


__all__ = [
    "ALL_METADATA",
    "ApiKey",
    "AuditEvent",
    "Base",
    "BudgetMonth",
    "ConsoleSessionRow",
    "Dataset",
    "DriftBucket",
    "FeatureSetVersion",
    "FlaggedTransactionRow",
    "Job",
    "ModelVersion",
    "OidcFlow",
    "OutboxEvent",
    "RequestSample",
    "Retraining",
    "RetrainingSettings",
    "ReviewItem",
    "Rollout",
    "ScoredTransaction",
    "ScoringConfig",
    "Tenant",
    "TenantOidcConfig",
    "TransactionLabel",
    "UsageDaily",
    "UsageEvent",
    "User",
    "UserSession",
]
