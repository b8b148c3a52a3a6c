"""Event bus on Redis Streams: one stream per topic, shared by every process of the deployment.

- ``publish`` is one ``XADD`` (the stream trimmed to about ``maxlen`` entries). Once it returned,
  the message is durable for the bus's purposes, which is what ``require_delivery`` asks of a
  remote bus; a failed subscriber is retried by the bus, never by the publisher.
- A "broadcast" subscription reads the stream with plain ``XREAD`` from where it subscribed: every
  process sees every message, nothing is acknowledged (a process that was down rebuilds its
  per-process state from the database at start). The publishing process runs its own broadcast
  handlers at once, so a change is visible to the process that made it before ``publish`` returns,
  and skips that message when it comes back from the stream.
- A "work" subscription is a consumer group (one per subscriber kind) with one consumer per
  process: each message goes to one process, is acknowledged after every handler of the group
  returned (handlers commit their own work), and stays pending otherwise. Entries pending longer
  than ``claim_idle_ms`` (a consumer that crashed, or a handler that failed) are taken over with
  ``XAUTOCLAIM`` by whichever process looks next; after ``max_deliveries`` they move to the
  ``<stream>:dead`` stream so one poison message cannot spin forever. At least once: handlers must
  be idempotent.

``start()`` runs one consumer thread per subscription (blocking reads of at most ``block_ms``, so
``close()`` returns within about that long); ``subscribe`` after ``start`` starts its thread at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from providers.local.event_bus import check_mode, run_handlers
from providers.ports import DeliveryMode, Handler, ProviderError

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str] | None]


def _errors(exc: Exception) -> ProviderError:
    return ProviderError(f"redis bus: {exc}")


@dataclass
class _Subscription:
    topic: str
    mode: DeliveryMode
    group: str
    handlers: list[Handler] = field(default_factory=list)
    last_id: str = "0-0"  # broadcast: the last entry this process has seen
    thread: threading.Thread | None = None


class RedisStreamsEventBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "fraudrail:bus:",
        maxlen: int = 100_000,
        batch: int = 64,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 10,
        consumer: str | None = None,
        timeout_s: float = 2.0,
        modes: Mapping[str, DeliveryMode] | None = None,
    ) -> None:
        # topic -> mode for subscriptions that do not name one (the deployment's topic map).
        self._modes: dict[str, DeliveryMode] = dict(modes or {})
        self._prefix = prefix
        self._maxlen = maxlen
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_deliveries = max_deliveries
        # Unique per process (and per bus): a restarted process is a new consumer, and entries the
        # old one held are reclaimed like those of any dead consumer.
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        # Blocking reads hold a connection for up to block_ms: a pool of their own, a longer timeout.
        self._reader = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s + block_ms / 1000,
            socket_connect_timeout=timeout_s,
        )
        self._lock = threading.Lock()
        self._subs: dict[tuple[str, str, str], _Subscription] = {}
        self._local: dict[str, list[Handler]] = defaultdict(list)  # broadcast handlers by topic
        self._stop = threading.Event()
        self._started = False
        self.delivered = 0  # messages handed to handlers from the stream (tests, health checks)
        self.reclaimed = 0  # entries taken over from another consumer (or a failed attempt)

    def stream(self, topic: str) -> str:
        return self._prefix + topic

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, message: Mapping[str, Any], *, require_delivery: bool = False) -> None:
        body = json.dumps(dict(message), separators=(",", ":"), default=str)
        try:
            self._client.xadd(
                self.stream(topic), {"m": body, "o": self.consumer}, maxlen=self._maxlen, approximate=True
            )
        except redis.RedisError as exc:
            raise _errors(exc) from exc
        with self._lock:
            handlers = list(self._local.get(topic, ()))
        # Errors are logged only: the message is in the stream, and broadcast state is per process.
        run_handlers(handlers, topic, json.loads(body))

    # ----------------------------------------------------------------- subscribing

    def subscribe(
        self, topic: str, handler: Handler, *, mode: DeliveryMode | None = None, group: str | None = None
    ) -> None:
        check_mode(mode)
        mode = mode or self._modes.get(topic, "broadcast")
        name = "" if mode == "broadcast" else (group or topic)
        key = (topic, mode, name)
        with self._lock:
            sub = self._subs.get(key)
            if sub is not None:
                sub.handlers.append(handler)
                if mode == "broadcast":
                    self._local[topic].append(handler)
                return
        sub = _Subscription(topic, mode, name, [handler])
        try:
            if mode == "broadcast":
                last = self._client.xrevrange(self.stream(topic), count=1)
                sub.last_id = last[0][0] if last else "0-0"
            else:
                self._ensure_group(topic, name)
        except redis.RedisError as exc:
            raise _errors(exc) from exc
        with self._lock:
            if key in self._subs:  # a concurrent subscribe of the same kind won
                self._subs[key].handlers.append(handler)
            else:
                self._subs[key] = sub
            if mode == "broadcast":
                self._local[topic].append(handler)
            start_now = self._started and sub.thread is None and self._subs[key] is sub
        if start_now:
            self._spawn(sub)

    def _ensure_group(self, topic: str, group: str) -> None:
        try:
            # From the stream's start: messages published before the first consumer of this kind
            # existed are delivered too (the stream is trimmed, so this is bounded).
            self._client.xgroup_create(self.stream(topic), group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --------------------------------------------------------------------- running

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            subs = [s for s in self._subs.values() if s.thread is None]
        for sub in subs:
            self._spawn(sub)

    def _spawn(self, sub: _Subscription) -> None:
        target = self._run_broadcast if sub.mode == "broadcast" else self._run_work
        sub.thread = threading.Thread(target=target, args=(sub,), name=f"redis-bus-{sub.topic}", daemon=True)
        sub.thread.start()

    def close(self) -> None:
        """Stop the consumer threads (idempotent); this process's consumer leaves its groups when it
        holds nothing, so it does not linger in ``XINFO CONSUMERS``."""
        self._stop.set()
        with self._lock:
            subs = list(self._subs.values())
            self._started = False
        for sub in subs:
            if sub.thread is not None:
                sub.thread.join(timeout=self._block_ms / 1000 + 5)
                sub.thread = None
        for sub in subs:
            if sub.mode != "work":
                continue
            try:
                pending = self._client.xpending_range(
                    self.stream(sub.topic), sub.group, "-", "+", 1, consumername=self.consumer
                )
                if not pending:
                    self._client.xgroup_delconsumer(self.stream(sub.topic), sub.group, self.consumer)  # type: ignore[no-untyped-call]  # types-redis leaves it untyped
            except redis.RedisError as exc:
                log.debug("redis bus: could not leave %s/%s: %s", sub.topic, sub.group, exc)
        self._client.close()
        self._reader.close()

    def _backoff(self, failures: int) -> None:
        self._stop.wait(min(0.1 * 2**failures, 5.0))

    def _run_broadcast(self, sub: _Subscription) -> None:
        stream, failures = self.stream(sub.topic), 0
        while not self._stop.is_set():
            try:
                got = self._reader.xread({stream: sub.last_id}, count=self._batch, block=self._block_ms)
                failures = 0
            except redis.RedisError as exc:
                log.warning("redis bus: reading %s failed: %s", sub.topic, exc)
                failures += 1
                self._backoff(failures)
                continue
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    sub.last_id = entry_id
                    if fields and fields.get("o") != self.consumer:
                        self._handle(sub, fields)

    def _run_work(self, sub: _Subscription) -> None:
        stream, failures = self.stream(sub.topic), 0
        next_claim = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_claim:
                    # Look for abandoned entries a few times per idle period (cheap when none).
                    next_claim = time.monotonic() + max(self._claim_idle_ms / 4000, 0.05)
                    self.reclaim(sub.topic, sub.group)
                got = self._reader.xreadgroup(
                    sub.group, self.consumer, {stream: ">"}, count=self._batch, block=self._block_ms
                )
                for _stream, entries in got or []:
                    self._work(sub, entries)
                failures = 0
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted (e.g. FLUSHDB): make it again
                    self._recreate(sub)
                    continue
                log.warning("redis bus: reading %s failed: %s", sub.topic, exc)
                failures += 1
                self._backoff(failures)
            except redis.RedisError as exc:
                log.warning("redis bus: reading %s failed: %s", sub.topic, exc)
                failures += 1
                self._backoff(failures)

    def _recreate(self, sub: _Subscription) -> None:
        try:
            self._ensure_group(sub.topic, sub.group)
        except redis.RedisError as exc:
            log.warning("redis bus: cannot recreate group %s: %s", sub.group, exc)
            self._backoff(3)

    def reclaim(self, topic: str, group: str | None = None) -> int:
        """Take over this group's entries pending for longer than ``claim_idle_ms`` and handle them
        here; returns how many were handled (the consumer threads call it periodically)."""
        group = group or topic
        with self._lock:
            sub = self._subs.get((topic, "work", group))
        if sub is None:
            return 0
        stream, start, handled = self.stream(topic), "0-0", 0
        while True:
            reply = self._client.xautoclaim(
                stream, group, self.consumer, self._claim_idle_ms, start_id=start, count=self._batch
            )
            start, entries = reply[0], reply[1]
            if entries:
                self.reclaimed += len(entries)
                handled += self._work(sub, entries, reclaimed=True)
            if start == "0-0" or not entries:
                return handled

    def _work(self, sub: _Subscription, entries: list[Entry], *, reclaimed: bool = False) -> int:
        stream, handled = self.stream(sub.topic), 0
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending: nothing left to run
                self._ack(stream, sub.group, entry_id)
                continue
            if reclaimed and self._exhausted(sub, entry_id, fields):
                continue
            if self._handle(sub, fields):
                self._ack(stream, sub.group, entry_id)
                handled += 1
            # else: stays pending; reclaimed after claim_idle_ms (here or by another process)
        return handled

    def _ack(self, stream: str, group: str, entry_id: str) -> None:
        self._client.execute_command("XACK", stream, group, entry_id)

    def _exhausted(self, sub: _Subscription, entry_id: str, fields: dict[str, str]) -> bool:
        stream = self.stream(sub.topic)
        info = self._client.xpending_range(stream, sub.group, entry_id, entry_id, 1)
        times = int(info[0]["times_delivered"]) if info else 0
        if times <= self._max_deliveries:
            return False
        log.error(
            "redis bus: %s %s failed %d deliveries; moved to %s:dead", sub.topic, entry_id, times, stream
        )
        pipe = self._client.pipeline()
        pipe.xadd(f"{stream}:dead", {**fields, "id": entry_id, "group": sub.group}, maxlen=self._maxlen)
        pipe.xack(stream, sub.group, entry_id)  # type: ignore[no-untyped-call]  # untyped in types-redis
        pipe.execute()
        return True

    def _handle(self, sub: _Subscription, fields: dict[str, str]) -> bool:
        """Run the subscription's handlers; True when none failed."""
        try:
            message = json.loads(fields.get("m", "{}"))
        except ValueError:
            message = {"message": fields.get("m")}
        if not isinstance(message, Mapping):
            message = {"message": message}
        with self._lock:
            handlers = list(sub.handlers)
            self.delivered += 1
        return not run_handlers(handlers, sub.topic, message)
