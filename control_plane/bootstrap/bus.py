"""The event bus chosen by ``FRAUDRAIL_BUS_BACKEND`` (memory or redis; sns is built with the AWS
adapters), and its consumer lifecycle for the app's lifespan."""

from __future__ import annotations

from control_plane import events
from control_plane.settings import AppSettings
from providers.local.event_bus import InProcessEventBus
from providers.ports import EventBus


def build_event_bus(settings: AppSettings) -> EventBus:
    if settings.bus_backend == "redis":
        from providers.redis_bus import RedisStreamsEventBus

        return RedisStreamsEventBus(
            settings.bus_redis_url or settings.redis_url,
            prefix=settings.bus_stream_prefix,
            claim_idle_ms=int(settings.bus_claim_idle_s * 1000),
            modes=events.DELIVERY,  # who receives each topic: every process, or one per kind
        )
    return InProcessEventBus()


def start_bus(bus: EventBus) -> None:
    """Start consuming (a remote bus delivers to this process only from here on)."""
    start = getattr(bus, "start", None)
    if callable(start):
        start()


def close_bus(bus: EventBus) -> None:
    close = getattr(bus, "close", None)
    if callable(close):
        close()
