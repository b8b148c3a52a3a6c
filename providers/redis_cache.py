"""Feature cache on Redis (ElastiCache in production): keys ``fr:{tenant}:{key}``.

The sync calls use a blocking client; the async ones (the fraud-check hot path) a ``redis.asyncio``
client (hiredis parses its replies) with one connection pool per event loop, opened on the loop's
first call, so a check waits for Redis without blocking the loop. The async client retries once,
at once, on a broken connection (a pooled socket the server closed), never after a timeout: the
hot path's budget is ``timeout_ms``, and a dead Redis must cost one timeout, not a backoff series.

An async call's ``timeout_ms`` counts Redis's lateness, not the event loop's: a busy loop (other
checks scoring) resumes a waiting check later than its reply arrived, and a plain timeout on the
wait degraded a third of the checks of a loaded server whose Redis answered in time. So when the
deadline's callback runs late, or one more pass of the loop takes longer than ``LOOP_LATE_S``
(the loop is busy; the reply may be waiting unread), the call gets a fresh budget, for at most
``LAG_CAP_S`` in all; a deadline met by an idle loop means Redis itself is slow. The client's own
socket and connect timeouts are that outer bound.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from providers.ports import Admission, Admitted, ProviderError

T = TypeVar("T")
LOOP_LATE_S = 0.0005  # a deadline (or one pass of the loop) later than this: the loop was busy
LAG_CAP_S = 1.0  # the longest one async call may wait, however busy the loop is

# The admission runs as a local function over its own KEYS / ARGV; only when it admits (its first
# element is 1) is the idempotency key claimed and the states read, in the same atomic call.
# KEYS: the admission's keys, the claim key, the keys to read; ARGV: how many admission keys and
# arguments, the admission's arguments, the claim's marker and TTL.
ADMIT_CLAIM_READ = """
local function admit(KEYS, ARGV)
%s
end
local na, nargs = tonumber(ARGV[1]), tonumber(ARGV[2])
local akeys, aargv = {}, {}
for i = 1, na do akeys[i] = KEYS[i] end
for i = 1, nargs do aargv[i] = ARGV[2 + i] end
local verdict = admit(akeys, aargv)
if tonumber(verdict[1]) ~= 1 then return {verdict} end
local claim = KEYS[na + 1]
local existing = false
if not redis.call('SET', claim, ARGV[nargs + 3], 'NX', 'EX', ARGV[nargs + 4]) then
  existing = redis.call('GET', claim)
end
local values = {}
if #KEYS > na + 1 then values = redis.call('MGET', unpack(KEYS, na + 2)) end
return {verdict, existing, values}
"""


class RedisFeatureCache:
    def __init__(self, url: str, *, timeout_ms: float = 5.0) -> None:
        timeout = timeout_ms / 1000.0
        self._url = url
        self._timeout_s, self._connect_timeout_s = max(timeout, 0.001), max(timeout * 10, 0.05)
        self._client = redis.Redis.from_url(
            url, socket_timeout=self._timeout_s, socket_connect_timeout=self._connect_timeout_s
        )
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis[bytes]] | None = None
        self._scripts: dict[str, tuple[str, str]] = {}  # admission script -> (combined, its SHA-1)

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

    def _aclient(self) -> redis.asyncio.Redis[bytes]:
        """The running loop's client (one pool per loop: a pool's sockets belong to one loop)."""
        loop = asyncio.get_running_loop()
        held = self._async
        if held is None or held[0] is not loop:
            retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            client: redis.asyncio.Redis[bytes] = redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=max(self._timeout_s, LAG_CAP_S),  # the bound; _within_budget the budget
                socket_connect_timeout=max(self._connect_timeout_s, LAG_CAP_S),
                retry=retry,
            )
            self._async = held = (loop, client)
        return held[1]

    async def _within_budget(self, call: Awaitable[T]) -> T:
        """Await ``call``, failing with ``ProviderError`` once Redis (not the loop) took longer than
        ``timeout_ms``."""
        loop = asyncio.get_running_loop()
        budget_s, started = self._timeout_s, loop.time()
        try:
            async with asyncio.timeout(None) as budget:
                timer: list[asyncio.Handle] = []

                def extend_or_expire(busy: bool, now: float) -> None:
                    if busy and now - started < LAG_CAP_S - budget_s:
                        timer[0] = loop.call_at(now + budget_s, deadline, now + budget_s)
                    else:
                        budget.reschedule(now)  # expires: the call is cancelled, TimeoutError

                def deadline(due: float) -> None:
                    now = loop.time()
                    if now - due > LOOP_LATE_S:  # the loop ran it late: it was busy
                        extend_or_expire(True, now)
                    else:  # on time; but a loop busy with short steps runs timers on time too
                        timer[0] = loop.call_soon(one_pass_later, now)

                def one_pass_later(asked: float) -> None:
                    now = loop.time()
                    extend_or_expire(now - asked > LOOP_LATE_S, now)

                timer.append(loop.call_at(started + budget_s, deadline, started + budget_s))
                try:
                    return await call
                finally:
                    timer[0].cancel()
        except (redis.RedisError, TimeoutError) as exc:
            raise ProviderError(f"redis: {str(exc) or 'no answer within the timeout'}") from exc

    async def aclaim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        full = self._k(tenant_id, claim_key)
        pipe = self._aclient().pipeline(transaction=False)
        pipe.set(full, marker, nx=True, ex=ttl_s)
        pipe.get(full)
        if read_keys:
            pipe.mget([self._k(tenant_id, k) for k in read_keys])
        replies = await self._within_budget(pipe.execute())
        values = list(replies[2]) if read_keys else []
        return (None if replies[0] else replies[1]), values

    async def aadmit_claim_and_read(
        self,
        admission: Admission,
        tenant_id: str,
        claim_key: str,
        marker: bytes,
        ttl_s: int,
        read_keys: Sequence[str],
    ) -> Admitted:
        script, sha = self._combined(admission.script)
        keys = [*admission.keys, self._k(tenant_id, claim_key), *(self._k(tenant_id, k) for k in read_keys)]
        args = [len(admission.keys), len(admission.args), *admission.args, marker, ttl_s]
        client: Any = self._aclient()  # redis-py's script calls are untyped

        async def run() -> Any:
            try:
                return await client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:  # the server restarted or flushed its scripts
                return await client.eval(script, len(keys), *keys, *args)  # cached for EVALSHA

        reply = await self._within_budget(run())
        if len(reply) == 1:
            return Admitted(list(reply[0]), None, [])
        verdict, existing, values = reply
        return Admitted(list(verdict), existing, list(values) + [None] * (len(read_keys) - len(values)))

    def _combined(self, admission_script: str) -> tuple[str, str]:
        found = self._scripts.get(admission_script)
        if found is None:
            script = ADMIT_CLAIM_READ % admission_script
            found = (script, hashlib.sha1(script.encode()).hexdigest())  # noqa: S324 - Redis's script names
            self._scripts[admission_script] = found
        return found

    async def aset_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None:
        pipe = self._aclient().pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(self._k(tenant_id, key), value, ex=ttl_s)
        await self._within_budget(pipe.execute())

    async def adelete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        await self._within_budget(self._aclient().delete(*[self._k(tenant_id, k) for k in keys]))

    async def aclose(self) -> None:
        held, self._async = self._async, None
        if held is not None and held[0] is asyncio.get_running_loop():
            client: Any = held[1]  # (aclose is newer than the type stubs)
            await client.aclose()

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False
