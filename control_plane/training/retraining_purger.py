"""Offboarding: a tenant's retraining records and retraining settings.

The datasets a retraining kept and the challengers it trained are purged with every dataset and
model version (the object store and the registry rows go with the tenant)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import TenantTablesPurger
from control_plane.training.orm import Retraining, RetrainingSettings


class RetrainingPurger(TenantTablesPurger):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        super().__init__("retraining", factory, (Retraining, RetrainingSettings))
