"""Webhook notifier: Slack (Block Kit through ``slack_sdk``) and Microsoft Teams (cards), with retries.

Each delivery is tried up to ``attempts`` times; network errors, 5xx and 429 are retried with
exponential backoff (``backoff_s * 2**n``, or the server's ``Retry-After`` up to
``max_retry_after_s``); anything else is final. ``send`` never raises: every webhook yields a
``DeliveryResult``. Webhook URLs carry their secret in the path, so logs and results show the
scheme and host only.

Teams: legacy Office 365 connectors (``*.webhook.office.com``) get a MessageCard built with
``pymsteams`` and answer 200 with body ``"1"``; Teams Workflows (Power Automate, ``*.logic.azure.com``
or ``*.powerplatform.com``) want an Adaptive Card in a ``message`` envelope and answer 202. The
contact ``teams_card`` ("message_card" | "adaptive") overrides the choice made from the host.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pymsteams
from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient

from providers.ports import DeliveryResult, Notification

log = logging.getLogger(__name__)

# slack_sdk logs request URLs (with their secret path) at debug level and failures at error
# level; this notifier logs every attempt itself, host only, so the SDK's logger stays quiet.
_SDK_LOG = logging.getLogger(f"{__name__}.slack_sdk")
_SDK_LOG.setLevel(logging.CRITICAL)

# severity -> (emoji, MessageCard theme colour, Adaptive Card text colour)
_SEVERITY: dict[str, tuple[str, str, str]] = {
    "critical": ("\N{POLICE CARS REVOLVING LIGHT}", "E81123", "Attention"),
    "warning": ("\N{WARNING SIGN}\N{VARIATION SELECTOR-16}", "FFB900", "Warning"),
    "info": ("\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}", "0078D7", "Accent"),
}
_WORKFLOW_HOSTS = (".logic.azure.com", ".powerplatform.com", ".powerautomate.com")
_SLACK_FIELDS_PER_SECTION = 10  # Block Kit limits
_SLACK_MAX_BUTTONS = 25


def _style(severity: str) -> tuple[str, str, str]:
    return _SEVERITY.get(severity, _SEVERITY["info"])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _slack_escape(text: str) -> str:
    """Slack mrkdwn control characters (a fact value must not become a link or a mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of a webhook URL, with ``/...`` standing for its secret path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if not parts.hostname:
        return "<invalid url>"
    host = parts.hostname + (f":{port}" if port else "")
    return f"{parts.scheme}://{host}" + ("/..." if parts.path.strip("/") or parts.query else "")


def _links(note: Notification) -> list[tuple[str, str]]:
    return [(str(name), str(url)) for name, url in note.links.items() if _is_http_url(str(url))]


# ------------------------------------------------------------------------------ payloads


def slack_payload(note: Notification) -> dict[str, Any]:
    """Block Kit message: severity header, the text, every fact as a field, links as buttons."""
    emoji, _, _ = _style(note.severity)
    header = _clip(f"{emoji} {note.severity.upper()}: {note.title}", 150)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    if note.text:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_slack_escape(note.text), 3000)}}
        )
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{_slack_escape(str(k))}*\n{_slack_escape(str(v))}", 2000)}
        for k, v in note.facts.items()
    ]
    for start in range(0, len(fields), _SLACK_FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + _SLACK_FIELDS_PER_SECTION]})
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": _clip(name, 75), "emoji": True},
            "url": url,
            "action_id": f"link_{i}",
        }
        for i, (name, url) in enumerate(_links(note)[:_SLACK_MAX_BUTTONS])
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    fallback = f"[{note.severity.upper()}] {note.title}: {note.text}"
    return {"text": _clip(fallback, 3000), "blocks": blocks}


def teams_payload(note: Notification) -> dict[str, Any]:
    """Legacy connector MessageCard (built with ``pymsteams``): title, text, a facts section, links."""
    emoji, color, _ = _style(note.severity)
    card = pymsteams.connectorcard("https://invalid.invalid/")  # used as a builder only; never sent
    card.title(f"{emoji} {note.severity.upper()}: {note.title}")
    card.summary(_clip(f"[{note.severity.upper()}] {note.title}", 200))
    if note.text:
        card.text(note.text)
    card.color(color)
    if note.facts:
        section = pymsteams.cardsection()
        section.activityTitle(f"Severity: {note.severity}")
        for name, value in note.facts.items():
            section.addFact(str(name), str(value))
        card.addSection(section)
    for name, url in _links(note):
        card.addLinkButton(name, url)
    # pymsteams leaves out the card's type and context; connectors expect them.
    payload: dict[str, Any] = {"@type": "MessageCard", "@context": "https://schema.org/extensions"}
    payload.update(dict(card.payload))
    return payload


def teams_adaptive_payload(note: Notification) -> dict[str, Any]:
    """Teams Workflows message: one Adaptive Card (1.4) with a FactSet and OpenUrl actions."""
    emoji, _, text_color = _style(note.severity)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{emoji} {note.severity.upper()}: {note.title}",
            "weight": "Bolder",
            "size": "Medium",
            "color": text_color,
            "wrap": True,
        }
    ]
    if note.text:
        body.append({"type": "TextBlock", "text": note.text, "wrap": True})
    if note.facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": str(k), "value": str(v)} for k, v in note.facts.items()]}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    links = _links(note)
    if links:
        card["actions"] = [{"type": "Action.OpenUrl", "title": name, "url": url} for name, url in links]
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def teams_card_format(url: str, contacts: Mapping[str, Any]) -> str:
    """``adaptive`` for Teams Workflows URLs (or when the contact says so), else ``message_card``."""
    chosen = contacts.get("teams_card")
    if chosen in ("adaptive", "message_card"):
        return str(chosen)
    host = (urlsplit(url).hostname or "").lower()
    return "adaptive" if host.endswith(_WORKFLOW_HOSTS) else "message_card"


# ------------------------------------------------------------------------------ delivery


@dataclass(frozen=True)
class _Reply:
    status: int
    body: str
    headers: Mapping[str, str]  # lower-case names


def _lower_headers(headers: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        out[str(name).lower()] = str(value)
    return out


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _http_retryable(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookNotifier:
    """``Notifier`` posting to ``slack_webhook_url`` and ``teams_webhook_url`` of a tenant's contacts."""

    def __init__(
        self,
        *,
        timeout_s: float = 3.0,
        attempts: int = 3,
        backoff_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after_s: float = 10.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep

    def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
        """Deliver to every webhook in ``contacts`` (a URL or a list of URLs per channel)."""
        results: list[DeliveryResult] = []
        for channel, key in (("slack", "slack_webhook_url"), ("teams", "teams_webhook_url")):
            value = contacts.get(key)
            urls = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
            for url in urls:
                if not url:
                    continue
                try:
                    results.append(self._deliver_one(channel, str(url), contacts, note))
                except Exception as exc:  # the contract: a failed delivery never raises
                    log.exception("%s notification to %s failed unexpectedly", channel, redact_url(str(url)))
                    results.append(
                        DeliveryResult(channel, redact_url(str(url)), False, None, 0, type(exc).__name__)
                    )
        return results

    def _deliver_one(
        self, channel: str, url: str, contacts: Mapping[str, Any], note: Notification
    ) -> DeliveryResult:
        if not _is_http_url(url):
            return DeliveryResult(channel, redact_url(url), False, None, 0, "invalid webhook URL")
        post: Callable[[], _Reply]
        accept: Callable[[_Reply], tuple[bool, bool]]
        if channel == "slack":
            slack_body = slack_payload(note)
            post = functools.partial(self._post_slack, url, slack_body)
            accept = self._accept_slack
        else:
            fmt = teams_card_format(url, contacts)
            teams_body = teams_adaptive_payload(note) if fmt == "adaptive" else teams_payload(note)
            post = functools.partial(self._post_json, url, teams_body)
            accept = self._accept_teams_workflow if fmt == "adaptive" else self._accept_teams_connector
        return self._with_retries(channel, url, post, accept)

    def _with_retries(
        self,
        channel: str,
        url: str,
        post: Callable[[], _Reply],
        accept: Callable[[_Reply], tuple[bool, bool]],
    ) -> DeliveryResult:
        shown = redact_url(url)
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            wait_hint: float | None = None
            try:
                reply = post()
            except Exception as exc:
                status = None
                error = f"{type(exc).__name__}: {str(exc).replace(url, shown)}"[:300]
                # Network errors (OSError: refused, reset, timeout) are retried; a bad request is not.
                retryable = isinstance(exc, OSError) or not isinstance(exc, SlackRequestError | ValueError)
            else:
                status = reply.status
                ok, retryable = accept(reply)
                if ok:
                    log.info("%s notification delivered to %s (attempt %d)", channel, shown, attempt)
                    return DeliveryResult(channel, shown, True, status, attempt, None)
                error = f"HTTP {reply.status}: {reply.body.strip()[:200]}"
                wait_hint = retry_after_s(reply.headers)
            last = attempt == self.attempts
            log.warning(
                "%s notification to %s failed (attempt %d/%d%s): %s",
                channel,
                shown,
                attempt,
                self.attempts,
                "" if retryable and not last else ", giving up",
                error,
            )
            if not retryable or last:
                return DeliveryResult(channel, shown, False, status, attempt, error)
            delay = self.backoff_s * (2 ** (attempt - 1))
            if wait_hint is not None:
                delay = max(delay, min(wait_hint, self.max_retry_after_s))
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- transports -------------------------------------------------------------------------
    def _post_slack(self, url: str, payload: dict[str, Any]) -> _Reply:
        # retry_handlers=[]: this class owns the retry policy (and its injectable sleep).
        client = WebhookClient(
            url, timeout=max(1, math.ceil(self.timeout_s)), logger=_SDK_LOG, retry_handlers=[]
        )
        resp = client.send_dict(payload)
        return _Reply(resp.status_code, resp.body or "", _lower_headers((resp.headers or {}).items()))

    def _post_json(self, url: str, payload: dict[str, Any]) -> _Reply:
        # urllib rather than an HTTP client library: those log request URLs (the secret path).
        request = urllib.request.Request(  # noqa: S310 - scheme checked by _is_http_url
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "fraudrail-notifier"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310
                body = resp.read().decode("utf-8", "replace")
                return _Reply(resp.status, body, _lower_headers(resp.headers.items()))
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace") if exc.fp is not None else ""
            return _Reply(exc.code, body, _lower_headers(exc.headers.items() if exc.headers else []))

    # -- what counts as delivered -------------------------------------------------------------
    @staticmethod
    def _accept_slack(reply: _Reply) -> tuple[bool, bool]:
        ok = 200 <= reply.status < 300
        return ok, not ok and _http_retryable(reply.status)

    @staticmethod
    def _accept_teams_connector(reply: _Reply) -> tuple[bool, bool]:
        if not 200 <= reply.status < 300:
            return False, _http_retryable(reply.status)
        body = reply.body.strip()
        if reply.status != 200 or body == "1":
            return True, False
        # A connector answers 200 with an error text when Teams refused the message downstream.
        return False, "429" in body or "HTTP error 5" in body

    @staticmethod
    def _accept_teams_workflow(reply: _Reply) -> tuple[bool, bool]:
        ok = 200 <= reply.status < 300
        return ok, not ok and _http_retryable(reply.status)
