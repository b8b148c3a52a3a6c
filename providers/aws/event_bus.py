"""Event bus on SNS: publish to one topic per event name; subscribe through an HTTP receiver.

``subscribe`` starts (once) a small threaded HTTP server and subscribes its URL to the topic
with protocol ``http``. The receiver unwraps the SNS envelope and calls the handlers of that
topic; a failing handler is logged and never breaks delivery to the others.

Where SNS can reach the receiver: moto (and LocalStack) POST to ``127.0.0.1`` directly. Real SNS
needs a reachable URL (``advertise_url``, e.g. behind a load balancer with TLS) and confirms
the subscription first; the receiver confirms with ``ConfirmSubscription`` (the token, signed
API call) rather than fetching the ``SubscribeURL`` it was sent. It does not verify message
signatures and accepts only topics it subscribed to: do not expose it without a proxy that
restricts callers to SNS. For workers in a private network, prefer SNS -> SQS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from providers.aws._util import AwsError, provider_error
from providers.local.event_bus import check_mode, run_handlers
from providers.ports import DeliveryFailed, DeliveryMode, Handler, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

log = logging.getLogger(__name__)

_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_BODY = 512 * 1024  # SNS messages are at most 256 KiB; the envelope adds a little


def topic_name(topic: str, prefix: str = "fraudrail-") -> str:
    """The SNS topic name for an event name (``alarms`` -> ``fraudrail-alarms``)."""
    return (prefix + _TOPIC_UNSAFE.sub("-", topic))[:256]


class SnsEventBus:
    def __init__(
        self,
        client: SNSClient,
        topic_arns: Mapping[str, str] | None,
        create_topics: bool,
        *,
        topic_prefix: str = "fraudrail-",
        receiver_host: str = "127.0.0.1",
        receiver_port: int = 0,
        advertise_url: str | None = None,
    ) -> None:
        self._sns = client
        self._arns: dict[str, str] = dict(topic_arns or {})
        self._create_topics = create_topics
        self._prefix = topic_prefix
        self._receiver_host = receiver_host
        self._receiver_port = receiver_port
        self._advertise_url = advertise_url
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._subscriptions: dict[str, str] = {}  # topic -> subscription arn
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self.delivered = 0  # notifications handed to handlers (for tests and health checks)

    # ------------------------------------------------------------------ topics

    def topic_arn(self, topic: str) -> str | None:
        """The topic's ARN: configured, or created (idempotently) when ``create_topics``."""
        with self._lock:
            arn = self._arns.get(topic)
        if arn is not None or not self._create_topics:
            return arn
        try:
            arn = self._sns.create_topic(Name=topic_name(topic, self._prefix))["TopicArn"]
        except AwsError as exc:
            raise provider_error(f"sns create_topic {topic}", exc) from exc
        with self._lock:
            self._arns.setdefault(topic, arn)
            return self._arns[topic]

    def publish(self, topic: str, message: Mapping[str, Any], *, require_delivery: bool = False) -> None:
        # require_delivery needs nothing more here: SNS keeps the message, and a receiver whose
        # subscriber failed answers 500 so SNS delivers it again (its HTTP retry policy).
        arn = self.topic_arn(topic)
        if arn is None:
            if topic not in self._warned:
                self._warned.add(topic)
                log.warning("no SNS topic configured for %r: its events are dropped", topic)
            return
        try:
            self._sns.publish(
                TopicArn=arn,
                Message=json.dumps(dict(message), separators=(",", ":"), default=str),
                MessageAttributes={"topic": {"DataType": "String", "StringValue": topic}},
            )
        except AwsError as exc:
            raise provider_error(f"sns publish {topic}", exc) from exc

    # -------------------------------------------------------------- subscribing

    def subscribe(
        self, topic: str, handler: Handler, *, mode: DeliveryMode | None = None, group: str | None = None
    ) -> None:
        # Each process subscribes its own receiver, so every process gets every message: right for
        # "broadcast"; a "work" message is handled once per process (at least once; handlers are
        # idempotent). Exactly one consumer per work message on AWS needs SNS -> SQS (not built).
        check_mode(mode)
        arn = self.topic_arn(topic)
        if arn is None:
            raise ProviderError(f"no SNS topic for {topic!r} (configure its ARN or allow create_topics)")
        base = self._ensure_receiver()
        with self._lock:
            self._handlers[topic].append(handler)
            subscribed = topic in self._subscriptions
        if subscribed:
            return
        endpoint = f"{base}/sns/{quote(topic, safe='')}"
        protocol = "https" if endpoint.startswith("https://") else "http"
        try:
            response = self._sns.subscribe(
                TopicArn=arn, Protocol=protocol, Endpoint=endpoint, ReturnSubscriptionArn=True
            )
        except AwsError as exc:
            with self._lock:
                self._handlers[topic].remove(handler)
            raise provider_error(f"sns subscribe {topic}", exc) from exc
        with self._lock:
            self._subscriptions[topic] = response.get("SubscriptionArn", "")

    @property
    def receiver_url(self) -> str | None:
        server = self._server
        if server is None:
            return None
        return self._advertise_url or f"http://{self._receiver_host}:{server.server_address[1]}"

    def _ensure_receiver(self) -> str:
        with self._lock:
            if self._server is None:
                server = ThreadingHTTPServer((self._receiver_host, self._receiver_port), _make_handler(self))
                server.daemon_threads = True
                thread = threading.Thread(
                    target=server.serve_forever,
                    name="sns-receiver",
                    kwargs={"poll_interval": 0.2},
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread
        url = self.receiver_url
        assert url is not None
        return url.rstrip("/")

    def _known_topic(self, topic: str, topic_arn: str) -> bool:
        with self._lock:
            return self._arns.get(topic) == topic_arn and topic in self._handlers

    def _confirm(self, topic: str, envelope: Mapping[str, Any]) -> None:
        token, arn = envelope.get("Token"), envelope.get("TopicArn")
        if not isinstance(token, str) or not isinstance(arn, str) or not self._known_topic(topic, arn):
            log.warning("ignoring a subscription confirmation for an unknown topic")
            return
        try:
            response = self._sns.confirm_subscription(TopicArn=arn, Token=token)
        except AwsError as exc:
            log.warning("could not confirm the SNS subscription of %s: %s", topic, exc)
            return
        with self._lock:
            self._subscriptions[topic] = response.get("SubscriptionArn", self._subscriptions.get(topic, ""))

    def _deliver(self, topic: str, envelope: Mapping[str, Any]) -> None:
        arn = envelope.get("TopicArn")
        if not isinstance(arn, str) or not self._known_topic(topic, arn):
            log.warning("ignoring an SNS notification for an unknown topic")
            return
        raw = envelope.get("Message", "")
        try:
            message = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            message = {"message": raw}
        if not isinstance(message, Mapping):
            message = {"message": message}
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
            self.delivered += 1
        errors = run_handlers(handlers, topic, message)
        if errors:
            raise DeliveryFailed(topic, errors)

    def handle_envelope(self, topic: str, envelope: Mapping[str, Any]) -> None:
        """Process one SNS HTTP envelope (what the receiver does with each POST); ``DeliveryFailed``
        when a subscriber failed (the receiver then answers 500 and SNS retries)."""
        kind = envelope.get("Type")
        if kind == "Notification":
            self._deliver(topic, envelope)
        elif kind == "SubscriptionConfirmation":
            self._confirm(topic, envelope)
        elif kind == "UnsubscribeConfirmation":
            log.info("SNS unsubscribed the receiver from %s", topic)
        else:
            log.warning("ignoring an SNS message of type %r", kind)

    def close(self) -> None:
        """Unsubscribe and stop the receiver (idempotent)."""
        with self._lock:
            subscriptions = dict(self._subscriptions)
            self._subscriptions.clear()
            self._handlers.clear()
            server, thread = self._server, self._thread
            self._server = self._thread = None
        for topic, arn in subscriptions.items():
            if arn and arn.startswith("arn:"):
                try:
                    self._sns.unsubscribe(SubscriptionArn=arn)
                except AwsError as exc:
                    log.warning("could not unsubscribe %s: %s", topic, exc)
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def _make_handler(bus: SnsEventBus) -> type[BaseHTTPRequestHandler]:
    class SnsReceiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self.path.startswith("/sns/"):
                self._answer(404)
                return
            topic = unquote(self.path[len("/sns/") :].split("?", 1)[0])
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > _MAX_BODY:
                self._answer(413)
                return
            try:
                envelope = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._answer(400)
                return
            if not isinstance(envelope, dict):
                self._answer(400)
                return
            try:
                bus.handle_envelope(topic, envelope)
            except DeliveryFailed:
                self._answer(500)  # SNS retries the delivery; subscribers are idempotent
                return
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("sns receiver: " + format, *args)

    return SnsReceiver
