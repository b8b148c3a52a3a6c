"""WebhookNotifier: Block Kit / card payloads, delivery to a loopback sink, retries, no secret in logs."""

from __future__ import annotations

import logging

import pytest

from providers.ports import Notification
from providers.webhook_notifier import (
    WebhookNotifier,
    redact_url,
    retry_after_s,
    slack_payload,
    teams_adaptive_payload,
    teams_card_format,
    teams_payload,
)
from tests.webhook_sink import Reply, WebhookSink, closed_port_url

NOTE = Notification(
    title="Rollout ro_1 rolled back to mv_stable",
    text="canary p95 latency over SLO <@here> & more",
    severity="critical",
    facts={"Metric": "p95_latency_ms", "Threshold": "250", "Observed": "412.5", "Canary version": "mv_c"},
    links={
        "Dashboard": "https://grafana.example/d/rollouts",
        "Runbook": "https://wiki.example/rb",
        "x": "nope",
    },
)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def notifier(sleeps: Sleeps, **kw: float) -> WebhookNotifier:
    return WebhookNotifier(timeout_s=2.0, attempts=int(kw.pop("attempts", 3)), sleep=sleeps, **kw)


def test_slack_payload_has_severity_header_every_fact_and_link_buttons() -> None:
    payload = slack_payload(NOTE)
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header"
    assert "CRITICAL" in blocks[0]["text"]["text"] and NOTE.title in blocks[0]["text"]["text"]
    # mrkdwn control characters are escaped so a value cannot ping a channel or forge a link
    assert blocks[1]["text"]["text"] == "canary p95 latency over SLO &lt;@here&gt; &amp; more"
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields == [
        "*Metric*\np95_latency_ms",
        "*Threshold*\n250",
        "*Observed*\n412.5",
        "*Canary version*\nmv_c",
    ]
    buttons = blocks[3]["elements"]
    assert blocks[3]["type"] == "actions"
    assert [(b["text"]["text"], b["url"]) for b in buttons] == [
        ("Dashboard", "https://grafana.example/d/rollouts"),
        ("Runbook", "https://wiki.example/rb"),
    ]  # the non-URL link is dropped
    assert len({b["action_id"] for b in buttons}) == 2
    assert payload["text"].startswith("[CRITICAL] Rollout ro_1")


def test_slack_payload_splits_more_than_ten_facts_into_sections() -> None:
    note = Notification("t", "", "info", facts={f"k{i}": str(i) for i in range(13)})
    sections = [b for b in slack_payload(note)["blocks"] if "fields" in b]
    assert [len(s["fields"]) for s in sections] == [10, 3]


def test_teams_payload_is_a_message_card_with_facts_and_link_actions() -> None:
    card = teams_payload(NOTE)
    assert card["@type"] == "MessageCard" and card["@context"] == "https://schema.org/extensions"
    assert card["themeColor"] == "E81123"
    assert NOTE.title in card["title"] and card["text"] == NOTE.text
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts == dict(NOTE.facts)
    assert [(a["@type"], a["name"], a["target"]) for a in card["potentialAction"]] == [
        ("ViewAction", "Dashboard", ["https://grafana.example/d/rollouts"]),
        ("ViewAction", "Runbook", ["https://wiki.example/rb"]),
    ]


def test_teams_adaptive_payload_for_workflows() -> None:
    message = teams_adaptive_payload(NOTE)
    assert message["type"] == "message"
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    factset = next(b for b in card["body"] if b["type"] == "FactSet")
    assert {f["title"]: f["value"] for f in factset["facts"]} == dict(NOTE.facts)
    assert [a["url"] for a in card["actions"]] == [
        "https://grafana.example/d/rollouts",
        "https://wiki.example/rb",
    ]
    assert card["body"][0]["color"] == "Attention"


def test_teams_card_format_follows_the_host_unless_the_contact_says() -> None:
    assert teams_card_format("https://acme.webhook.office.com/webhookb2/x", {}) == "message_card"
    assert teams_card_format("https://prod-12.westeurope.logic.azure.com/workflows/x", {}) == "adaptive"
    assert teams_card_format("http://127.0.0.1:1/teams", {"teams_card": "adaptive"}) == "adaptive"


def test_redact_url_keeps_scheme_and_host_only() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com/..."
    assert redact_url("http://127.0.0.1:8080/teams/abc?x=1") == "http://127.0.0.1:8080/..."
    assert redact_url("not a url") == "<invalid url>"


def test_retry_after_parses_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
    assert retry_after_s({"retry-after": "7"}, now) == 7.0
    assert retry_after_s({"retry-after": "Sat, 01 Mar 2025 10:00:30 GMT"}, now) == 30.0
    assert retry_after_s({"retry-after": "soon"}, now) is None
    assert retry_after_s({}, now) is None


def test_delivers_slack_and_teams_to_the_sink(sink: WebhookSink) -> None:
    sleeps = Sleeps()
    contacts = {
        "slack_webhook_url": sink.url("/slack/T0/B0/SECRET"),
        "teams_webhook_url": sink.url("/teams/SECRET"),
        "email": "ops@example.com",
    }
    results = notifier(sleeps).send(contacts, NOTE)
    assert [(r.channel, r.ok, r.status, r.attempts, r.error) for r in results] == [
        ("slack", True, 200, 1, None),
        ("teams", True, 200, 1, None),
    ]
    assert all("SECRET" not in r.url for r in results)
    slack = sink.wait_for(1, path="/slack/T0/B0/SECRET")[0]
    assert slack.headers["content-type"].startswith("application/json")
    assert slack.json == slack_payload(NOTE)
    teams = sink.wait_for(1, path="/teams/SECRET")[0]
    assert teams.json == teams_payload(NOTE)
    assert sleeps.calls == []


def test_teams_500_500_200_is_retried_with_backoff_and_succeeds_on_attempt_3(sink: WebhookSink) -> None:
    sink.script("/teams", Reply(500, "boom"), Reply(500, "boom"))
    sleeps = Sleeps()
    [result] = notifier(sleeps, backoff_s=0.2).send({"teams_webhook_url": sink.url("/teams")}, NOTE)
    assert (result.ok, result.status, result.attempts, result.error) == (True, 200, 3, None)
    assert len(sink.wait_for(3, path="/teams")) == 3
    assert sleeps.calls == pytest.approx([0.2, 0.4])


def test_permanent_slack_500_fails_after_every_attempt(sink: WebhookSink) -> None:
    sink.default("/slack", Reply(500, "rollup_error"))
    sleeps = Sleeps()
    [result] = notifier(sleeps).send({"slack_webhook_url": sink.url("/slack")}, NOTE)
    assert (result.ok, result.status, result.attempts) == (False, 500, 3)
    assert result.error == "HTTP 500: rollup_error"
    assert len(sink.requests("/slack")) == 3
    assert len(sleeps.calls) == 2


def test_client_errors_are_not_retried(sink: WebhookSink) -> None:
    sink.default("/slack", Reply(404, "channel_not_found"))
    sleeps = Sleeps()
    [result] = notifier(sleeps).send({"slack_webhook_url": sink.url("/slack")}, NOTE)
    assert (result.ok, result.status, result.attempts) == (False, 404, 1)
    assert sleeps.calls == []


def test_429_honours_retry_after_up_to_the_cap(sink: WebhookSink) -> None:
    sink.script("/slack", Reply(429, "rate_limited", {"Retry-After": "4"}))
    sink.script("/teams", Reply(429, "", {"Retry-After": "120"}))
    sleeps = Sleeps()
    results = notifier(sleeps, max_retry_after_s=10.0).send(
        {"slack_webhook_url": sink.url("/slack"), "teams_webhook_url": sink.url("/teams")}, NOTE
    )
    assert [(r.ok, r.attempts) for r in results] == [(True, 2), (True, 2)]
    assert sleeps.calls == [4.0, 10.0]


def test_teams_connector_200_with_an_error_body_is_a_retryable_failure(sink: WebhookSink) -> None:
    sink.script("/teams", Reply(200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId x"))
    sleeps = Sleeps()
    [result] = notifier(sleeps).send({"teams_webhook_url": sink.url("/teams")}, NOTE)
    assert (result.ok, result.attempts) == (True, 2)


def test_workflow_webhook_gets_an_adaptive_card_and_202_is_success(sink: WebhookSink) -> None:
    sink.default("/flow", Reply(202, ""))
    [result] = notifier(Sleeps()).send(
        {"teams_webhook_url": sink.url("/flow"), "teams_card": "adaptive"}, NOTE
    )
    assert (result.ok, result.status) == (True, 202)
    assert sink.wait_for(1, path="/flow")[0].json == teams_adaptive_payload(NOTE)


def test_network_errors_are_retried_then_reported_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = closed_port_url("/services/T0/B0/TOPSECRET")
    sleeps = Sleeps()
    results = notifier(sleeps).send({"slack_webhook_url": url, "teams_webhook_url": url}, NOTE)
    for result in results:
        assert (result.ok, result.status, result.attempts) == (False, None, 3)
        assert result.error is not None and "TOPSECRET" not in result.error
    assert len(sleeps.calls) == 4
    assert "TOPSECRET" not in caplog.text
    assert "failed (attempt 3/3, giving up)" in caplog.text


def test_invalid_urls_and_missing_contacts_never_raise() -> None:
    sleeps = Sleeps()
    results = notifier(sleeps).send(
        {"slack_webhook_url": "ftp://example.com/x", "teams_webhook_url": None, "email": "a@b.c"}, NOTE
    )
    assert [(r.channel, r.ok, r.attempts, r.error) for r in results] == [
        ("slack", False, 0, "invalid webhook URL")
    ]
    assert notifier(sleeps).send({}, NOTE) == []


def test_a_list_of_urls_gets_one_delivery_each(sink: WebhookSink) -> None:
    results = notifier(Sleeps()).send({"slack_webhook_url": [sink.url("/a"), sink.url("/b")]}, NOTE)
    assert [r.ok for r in results] == [True, True]
    assert {r.path for r in sink.wait_for(2)} == {"/a", "/b"}
