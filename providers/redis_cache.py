"""Feature cache on Redis (ElastiCache in production): keys ``fr:{tenant}:{key}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from providers.ports import ProviderError


class RedisFeatureCache:
    def __init__(self, url: str, *, timeout_ms: float = 5.0) -> None:
        timeout = timeout_ms / 1000.0
        self._client = redis.Redis.from_url(
            url, socket_timeout=max(timeout, 0.001), socket_connect_timeout=max(timeout * 10, 0.05)
        )

    @property
    def client(self) -> redis.Redis[bytes]:
        return self._client

    @staticmethod
    def _k(tenant_id: str, key: str) -> str:
        return f"fr:{{{tenant_id}}}:{key}"

    def ensure_namespace(self, tenant_id: str) -> bool:
        try:
            return bool(self._client.set(self._k(tenant_id, "__ns__"), b"1", nx=True))
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc

    def get_many(self, tenant_id: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = self._client.mget([self._k(tenant_id, k) for k in keys])
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc
        return [v if isinstance(v, bytes) or v is None else bytes(v) for v in values]

    def set_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(self._k(tenant_id, key), value, ex=ttl_s)
            pipe.execute()
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc

    def keys(self, tenant_id: str) -> list[str]:
        prefix = self._k(tenant_id, "")
        try:
            found = [k.decode() for k in self._client.scan_iter(match=prefix + "*", count=500)]
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc
        return sorted(k[len(prefix) :] for k in found if k[len(prefix) :] != "__ns__")

    def purge_tenant(self, tenant_id: str) -> int:
        prefix = self._k(tenant_id, "")
        removed = 0
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=prefix + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc
        return removed

    def claim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        full = self._k(tenant_id, claim_key)
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(full, marker, nx=True, ex=ttl_s)
            pipe.get(full)
            if read_keys:
                pipe.mget([self._k(tenant_id, k) for k in read_keys])
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc
        claimed = bool(replies[0])
        values = list(replies[2]) if read_keys else []
        return (None if claimed else replies[1]), values

    def delete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            self._client.delete(*[self._k(tenant_id, k) for k in keys])
        except redis.RedisError as exc:
            raise ProviderError(f"redis: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False
