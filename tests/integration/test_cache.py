"""The Redis cache backend (``config.cache``): one redis-py client per pool, shared by threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.core.cache import caches


def test_the_cache_keeps_one_client_per_pool_and_threads_can_share_it():
    backend = caches["default"]
    assert backend._cache.get_client(write=True) is backend._cache.get_client(write=True)

    def round_trip(n: int) -> int:
        key = f"test-cache-shared-client-{n}"
        backend.set(key, n, 30)
        value = backend.get(key)
        backend.delete(key)
        return value

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(round_trip, range(400))) == list(range(400))
