"""Django's Redis cache backend, keeping its redis.Redis client instead of building a new one for every call.

Django's RedisCacheClient.get_client() constructs a redis.Redis per cache operation, and building one (it fills a
table of ~170 response callbacks) costs more than the GET it then sends: ~0.77M of ~0.96M instructions per
cache.get in this project (callgrind). A page reads the cache at least three times (the cached_db session and the
BANNERS hooks), so that was ~2.3M instructions, ~10% of the client list. A redis.Redis holds no state between
commands (each command borrows a connection from the shared pool and returns it), so one client per pool serves
every call; redis-py documents clients as safe to share between threads, and Django keeps a cache object per
thread anyway."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


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


class RedisCache(DjangoRedisCache):
    """settings.CACHES backend: django.core.cache.backends.redis.RedisCache with the client above."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
