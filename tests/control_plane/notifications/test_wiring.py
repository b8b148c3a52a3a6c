"""Providers carry a rollback log and a notifier; tenant contacts come from the tenants table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.bootstrap.providers import Providers, build_providers
from control_plane.db import make_session_factory
from control_plane.notifications.contacts import tenant_contacts
from control_plane.settings import AppSettings
from control_plane.tenants.orm import Tenant
from providers.local.rollback_log import FileRollbackLog, MemoryRollbackLog
from providers.ports import RollbackRecord
from providers.webhook_notifier import WebhookNotifier


def test_build_providers_wires_a_file_rollback_log_and_the_webhook_notifier(tmp_path: Path) -> None:
    providers = build_providers(AppSettings(env="test", home=tmp_path), sessionmaker())
    assert isinstance(providers.rollback_log, FileRollbackLog)
    assert providers.rollback_log.path == tmp_path / "rollback-log.jsonl"
    assert isinstance(providers.notifier, WebhookNotifier)
    record = RollbackRecord("ten_a", "rb_1", datetime.now(UTC).isoformat(), "r", {}, {"mv_1": 10_000})
    assert providers.rollback_log.append(record) is True
    assert (tmp_path / "rollback-log.jsonl").exists()


def test_providers_built_without_the_new_ports_get_working_defaults(tmp_path: Path) -> None:
    base = build_providers(AppSettings(env="test", home=tmp_path), sessionmaker())
    legacy = Providers(
        object_store=base.object_store,
        feature_cache=base.feature_cache,
        model_host=base.model_host,
        flagged_store=base.flagged_store,
        event_bus=base.event_bus,
        metrics=base.metrics,
        provisioner=base.provisioner,
    )
    assert isinstance(legacy.rollback_log, MemoryRollbackLog)
    assert isinstance(legacy.notifier, WebhookNotifier)


@pytest.fixture
def factory(db_engine: Engine, clean_db: None) -> Iterator[sessionmaker[Session]]:
    yield make_session_factory(db_engine)


def test_tenant_contacts_reads_the_stored_contacts(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        session.add(
            Tenant(
                id="ten_contacts",
                slug="contacts-co",
                name="Contacts Co",
                tier="standard",
                region="eu-west-1",
                budget_amount=Decimal("100.00"),
                budget_currency="USD",
                contacts={"slack_webhook_url": "https://hooks.slack.com/x", "teams_webhook_url": None},
                status="active",
            )
        )
    contacts_for = tenant_contacts(factory)
    assert contacts_for("ten_contacts") == {"slack_webhook_url": "https://hooks.slack.com/x"}
    assert contacts_for("ten_missing") == {}
