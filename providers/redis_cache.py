"""Feature cache on Redis (ElastiCache in production): keys ``fr:{tenant}:{key}``.

The sync calls use a blocking client; the async ones (the fraud-check hot path) a ``redis.asyncio``
connection pool (hiredis parses the replies), one per event loop, opened on the loop's first call,
so a check waits for Redis without blocking the loop. Each async call writes its commands at once
on one pooled connection and reads their replies; a pooled socket the server closed is retried
once, at once, never after a timeout: a dead Redis must cost one timeout, not a backoff series.

An async call's ``timeout_ms`` counts Redis's lateness, not the event loop's (``_Budget``). A loop
busy scoring other checks reads a reply later than it arrived; timing the wait itself degraded
6-10 % of a saturated server's checks whose Redis had answered in time (the reply was in the socket
or already in the connection's buffer, unread). So the budget runs from the moment the request is
on the socket, and when it is due it looks at the connection: bytes from Redis waiting there,
unread, mean Redis answered and the loop is behind (the call waits on, for at most ``LAG_CAP_S``);
nothing there means Redis is late, and the call fails at once. A dead or stalled Redis thus fails
within the budget on a busy loop as on an idle one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import select
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from providers.ports import Admission, Admitted, ProviderError

LOOP_LATE_S = 0.0005  # a deadline the loop runs later than this: the loop was busy
LAG_CAP_S = 1.0  # the longest a new connection may take on a busy loop; the bound of its connect
# The sync calls serve work off the fraud-check path (label feeds, event handlers, health probes),
# whose failures are retried by the outbox or their job: they get this budget, not the hot path's
# milliseconds (a loaded host's healthy Redis missed a 5 ms budget and a label update waited for the
# outbox's retry). Still short enough that a dead Redis costs a probe or a handler about a second.
SYNC_TIMEOUT_S = 1.0

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
        sync_timeout_s = max(self._timeout_s, SYNC_TIMEOUT_S)
        self._client = redis.Redis.from_url(
            url, socket_timeout=sync_timeout_s, socket_connect_timeout=sync_timeout_s
        )
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis[bytes]] | None = None
        self._draining: set[asyncio.Task[None]] = set()  # cut-off calls' connections, reading on
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

    def _apool(self) -> Any:
        """The running loop's connection pool (one per loop: a pool's sockets belong to one loop)."""
        loop = asyncio.get_running_loop()
        held = self._async
        if held is None or held[0] is not loop:
            retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            client: redis.asyncio.Redis[bytes] = redis.asyncio.Redis.from_url(
                self._url,
                # No socket timeout: on Python 3.11 redis-py wraps every timed write in a task of its
                # own (two more passes of the loop per call); the budget bounds every wait instead.
                socket_timeout=None,
                socket_connect_timeout=max(self._connect_timeout_s, LAG_CAP_S),
                retry=retry,  # connects: once more at once, no backoff series
            )
            self._async = held = (loop, client)
        return held[1].connection_pool

    async def _round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """``commands`` written at once on one pooled connection and their replies read; any failure,
        or Redis late (see the module's docstring), as ``ProviderError``. A pooled socket the server
        closed is retried once, at once, on a fresh one."""
        try:
            try:
                return await self._exchange(commands)
            except redis.ConnectionError:
                return await self._exchange(commands)
        except (redis.RedisError, OSError) as exc:  # (TimeoutError, the budget's, is an OSError)
            raise ProviderError(f"redis: {str(exc) or 'no answer within the timeout'}") from exc

    async def _exchange(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        pool = self._apool()
        loop = asyncio.get_running_loop()
        replies: list[Any] = []
        owed = 0  # replies still to come on the socket
        async with asyncio.timeout(None) as expiry:
            budget = _Budget(loop, expiry, self._timeout_s)
            conn = budget.conn = pool.get_available_connection()
            try:
                await pool.ensure_connection(conn)  # a new socket connects (and shakes hands) here
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                budget.restart()  # the request is on the socket: Redis's time starts now
                owed = len(commands)
                while owed:
                    try:
                        replies.append(await conn.read_response(timeout=math.inf, disconnect_on_error=False))
                    except redis.ResponseError as exc:  # read on: the connection stays in step
                        replies.append(exc)
                    owed -= 1
            except asyncio.CancelledError:
                budget.stop()
                if owed and conn.is_connected:
                    # Expired (or the request went away) waiting for replies: the connection is
                    # still in step, so it reads them in the background and goes back to the pool
                    # then, instead of being closed and reconnected (more work for a late Redis).
                    self._draining.add(loop.create_task(self._drain(pool, conn, owed)))
                    raise
                await self._discard(pool, conn)  # cut off mid-handshake: out of step
                raise
            except BaseException:
                budget.stop()
                await self._discard(pool, conn)
                raise
            budget.stop()
            await pool.release(conn)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    async def _drain(self, pool: Any, conn: Any, owed: int) -> None:
        """Read the replies a cut-off call still owed, then give its connection back (at most
        ``LAG_CAP_S``; closed if they do not come)."""
        try:
            async with asyncio.timeout(LAG_CAP_S):
                for _ in range(owed):
                    with contextlib.suppress(redis.ResponseError):
                        await conn.read_response(timeout=math.inf, disconnect_on_error=False)
        except BaseException:
            await self._discard(pool, conn)
            return
        finally:
            self._draining.discard(asyncio.current_task())  # type: ignore[arg-type]
        await pool.release(conn)

    @staticmethod
    async def _discard(pool: Any, conn: Any) -> None:
        await conn.disconnect(nowait=True)
        await pool.release(conn)

    async def aclaim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        full = self._k(tenant_id, claim_key)
        commands: list[tuple[Any, ...]] = [("SET", full, marker, "NX", "EX", ttl_s), ("GET", full)]
        if read_keys:
            commands.append(("MGET", *(self._k(tenant_id, k) for k in read_keys)))
        replies = await self._round_trip(commands)
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
        try:
            (reply,) = await self._round_trip([("EVALSHA", sha, len(keys), *keys, *args)])
        except ProviderError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
            # The server restarted or flushed its scripts: EVAL runs it and caches it for EVALSHA.
            (reply,) = await self._round_trip([("EVAL", script, len(keys), *keys, *args)])
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
        expiry = ("EX", ttl_s) if ttl_s is not None else ()
        await self._round_trip([("SET", self._k(tenant_id, k), v, *expiry) for k, v in items.items()])

    async def adelete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        if keys:
            await self._round_trip([("DEL", *(self._k(tenant_id, k) for k in keys))])

    async def aclose(self) -> None:
        held, self._async = self._async, None
        if held is not None and held[0] is asyncio.get_running_loop():
            draining, self._draining = list(self._draining), set()
            for task in draining:
                task.cancel()
            await asyncio.gather(*draining, return_exceptions=True)
            client: Any = held[1]  # (aclose is newer than the type stubs)
            await client.aclose()

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False


class _Budget:
    """One async call's deadline, counting Redis's lateness rather than the event loop's.

    Due ``budget_s`` after the request went out (``restart``): if bytes from Redis then wait unread
    on the connection, Redis answered in time and only the loop is behind (it reads them on its next
    poll), so it is due again a budget later; if none do, Redis is late and the call expires. Before
    the request goes out (a new socket connecting and shaking hands, which cannot be watched as
    closely) a deadline the loop ran late is excused too, for at most ``LAG_CAP_S``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, expiry: asyncio.Timeout, budget_s: float) -> None:
        self._loop, self._expiry, self._budget_s = loop, expiry, budget_s
        self._began = loop.time()
        self._sent = False
        self.conn: Any = None  # the connection the call uses, once it has one
        self._handle = loop.call_at(self._began + budget_s, self._due, self._began + budget_s)

    def restart(self) -> None:
        """The request is on the socket: Redis's time starts now."""
        self._handle.cancel()
        self._sent = True
        self._arm(self._loop.time())

    def stop(self) -> None:
        self._handle.cancel()

    def _arm(self, now: float) -> None:
        self._handle = self._loop.call_at(now + self._budget_s, self._due, now + self._budget_s)

    def _due(self, due: float) -> None:
        now = self._loop.time()
        conn = self.conn
        if conn is not None and conn.is_connected and _bytes_waiting(conn):
            self._arm(now)  # Redis has answered: the loop will read it
        elif not self._sent and now - due > LOOP_LATE_S and now - self._began < LAG_CAP_S:
            self._arm(now)  # still connecting, and the loop was too busy to tell
        else:
            self._expiry.reschedule(now)  # Redis is late: the call is cancelled (TimeoutError)


def _bytes_waiting(conn: Any) -> bool:
    """Bytes from Redis on ``conn`` that its parser has not taken yet: read off the socket by the
    loop (in the connection's stream buffer, its reader task not resumed yet), or still in the
    socket (the loop has not polled it since they came). redis-py exposes neither, so both are
    looked up by attribute; a connection whose parts are not found has received nothing (the plain
    timeout)."""
    stream = getattr(conn, "_reader", None)  # the asyncio.StreamReader the parser reads from
    if getattr(stream, "_buffer", None):
        return True
    writer = getattr(conn, "_writer", None)
    sock = writer.get_extra_info("socket") if writer is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
