"""Django's Redis cache backend, keeping its redis.Redis client instead of building a new one for every call.

Django's RedisCacheClient.get_client() constructs a redis.Redis per cache operation, and building one (it fills a
table of ~170 response callbacks) costs more than the GET it then sends: ~0.77M of ~0.96M instructions per
cache.get in this project (callgrind). A page reads the cache at least three times (the cached_db session and the
BANNERS hooks), so that was ~2.3M instructions, ~10% of the client list. A redis.Redis holds no state between
commands (each command borrows a connection from the shared pool and returns it), so one client per pool serves
every call; redis-py documents clients as safe to share between threads, and Django keeps a cache object per
thread anyway."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# After a failed call the cache answers without trying Redis for this long: a page reads the cache several times,
# and each try against a Redis that is down costs a connection attempt (or its timeout, when packets are dropped).
RETRY_AFTER_SECONDS = 2.0
_unreachable_until = 0.0


def redis_unreachable() -> bool:
    """Whether the cache found Redis down within the last RETRY_AFTER_SECONDS (the "background work is paused"
    notice): every page reads its session through the cache first, so this is the state as of this request."""
    return time.monotonic() < _unreachable_until


def _down(exc: Exception) -> None:
    global _unreachable_until
    if not redis_unreachable():
        log.warning("cache: Redis cannot be reached (%s); answering as a cache miss", exc.__class__.__name__)
    _unreachable_until = time.monotonic() + RETRY_AFTER_SECONDS


def _tolerant(call: Any, fallback: Any, *args: Any) -> Any:
    if redis_unreachable():
        return fallback
    try:
        return call(*args)
    except _UNREACHABLE as exc:
        _down(exc)
        return fallback


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}  # id(connection pool) -> redis.Redis over that pool

    # The ignores: _get_connection_pool() and _client (the redis.Redis class) are Django's, private, and not in
    # django-stubs.
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # pools live as long as self
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client

    # What each operation answers while Redis is down: a miss, nothing stored, nothing found.
    def add(self, key: Any, value: Any, timeout: Any) -> Any:
        return _tolerant(super().add, False, key, value, timeout)

    def get(self, key: Any, default: Any) -> Any:
        return _tolerant(super().get, default, key, default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        _tolerant(super().set, None, key, value, timeout)

    def touch(self, key: Any, timeout: Any) -> Any:
        return _tolerant(super().touch, False, key, timeout)

    def delete(self, key: Any) -> Any:
        return _tolerant(super().delete, False, key)

    def get_many(self, keys: Any) -> Any:
        return _tolerant(super().get_many, {}, keys)

    def has_key(self, key: Any) -> Any:
        return _tolerant(super().has_key, False, key)

    def incr(self, key: Any, delta: Any) -> Any:
        return _tolerant(super().incr, delta, key, delta)

    def set_many(self, data: Any, timeout: Any) -> Any:
        return _tolerant(super().set_many, [], data, timeout)

    def delete_many(self, keys: Any) -> None:
        _tolerant(super().delete_many, None, keys)

    def clear(self) -> Any:
        return _tolerant(super().clear, False)


class RedisCache(DjangoRedisCache):
    """settings.CACHES backend: django.core.cache.backends.redis.RedisCache with the client above, that answers as
    a cache miss when Redis cannot be reached instead of raising. Every page reads the cache (the cached_db session,
    the banners, the sign-in throttle), so one Redis outage was a 500 on every page, though the database holds all
    that matters: sessions are read from it, a banner's figure is computed again, and RQ's jobs wait for Redis."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
