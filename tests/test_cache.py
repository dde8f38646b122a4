"""The cache building blocks of /img (ecogram.cache), each on its own."""

from __future__ import annotations

import asyncio

from ecogram.cache import (
    MISSING,
    ByteLRU,
    RedisTier,
    Resolutions,
    SingleFlight,
    Variant,
    dump_variant,
    load_variant,
)
from ecogram.redis_client import SharedRedis
from tests.faults import closed_port


def test_byte_lru_is_bounded_in_bytes_and_evicts_the_least_recent():
    over = ByteLRU.OVERHEAD
    lru: ByteLRU[str, bytes] = ByteLRU(3 * (100 + over), max_item=10_000)
    for key in "abc":
        assert lru.put(key, b"x" * 100, 100)
    assert lru.bytes == 3 * (100 + over)
    assert lru.get("a") == b"x" * 100  # a is now the most recent
    lru.put("d", b"y" * 100, 100)
    assert "b" not in lru and {"a", "c", "d"} == {k for k in "acd" if k in lru}
    assert lru.bytes <= lru.max_bytes
    # Replacing a key does not count it twice.
    lru.put("a", b"z" * 50, 50)
    assert lru.bytes == 2 * (100 + over) + 50 + over
    assert lru.discard_where(lambda key: key in ("a", "c")) == 2
    assert len(lru) == 1 and lru.bytes == 100 + over


def test_byte_lru_refuses_items_that_would_flush_everything():
    lru: ByteLRU[str, bytes] = ByteLRU(4000)
    assert not lru.put("huge", b"", 2000)  # over a quarter of the budget
    assert lru.put("fine", b"", 500)
    assert ByteLRU(0).put("any", b"", 1) is False


async def test_single_flight_runs_the_work_once_for_concurrent_callers():
    flights: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def work():
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    callers[0].cancel()  # one caller leaves: the work and the others go on
    gate.set()
    results = await asyncio.gather(*callers[1:])
    assert results == [42] * 9 and calls == 1 and len(flights) == 0
    assert await flights.run("k", work) == 42 and calls == 2  # finished: a new run


async def test_single_flight_shares_failures_and_forgets_them():
    flights: SingleFlight[int] = SingleFlight()

    async def fail():
        await asyncio.sleep(0)
        raise ValueError("boom")

    results = await asyncio.gather(*(flights.run("k", fail) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert len(flights) == 0


def test_resolutions_only_cache_while_enabled_and_respect_the_epoch():
    cache = Resolutions(max_codes=2)
    cache.put("A", 1, "a1", cache.epoch)
    assert cache.get("A", 1) is MISSING  # not enabled: nothing is kept
    cache.enabled = True
    cache.put("A", 1, "a1", cache.epoch)
    cache.put("A", None, None, cache.epoch)  # "nothing there" is cached too
    assert cache.get("A", 1) == "a1" and cache.get("A", None) is None
    stale_epoch = cache.epoch
    cache.forget("A")
    assert cache.get("A", 1) is MISSING
    cache.put("A", 1, "old", stale_epoch)  # read before the invalidation: not stored
    assert cache.get("A", 1) is MISSING
    for code in "BCD":
        cache.put(code, 1, code, cache.epoch)
    assert cache.get("B", 1) is MISSING and cache.get("D", 1) == "D"  # oldest code out
    cache.clear()
    assert len(cache) == 0


def test_resolutions_expire():
    cache = Resolutions(ttl=-1)
    cache.enabled = True
    cache.put("A", 1, "a", cache.epoch)
    assert cache.get("A", 1) is MISSING


def test_variant_serialisation_round_trip_and_foreign_values():
    variant = Variant(b"\x00\n\xffdata", "image/avif")
    assert load_variant(dump_variant(variant)) == variant
    assert load_variant(None) is None
    assert load_variant(b'{"json": 1}') is None


async def test_a_dead_redis_is_a_miss_and_is_not_asked_again_at_once():
    results = []
    with closed_port() as port:
        redis = SharedRedis(f"redis://127.0.0.1:{port}/0", "t", timeout=0.5, cooldown=30)
        tier = RedisTier(redis, "img", 60, on_lookup=results.append)
        try:
            assert await tier.get("k") is None
            assert not redis.available
            assert await tier.get("k") is None  # the circuit is open: no second timeout
            tier.put_later("k", Variant(b"x", "image/png"))  # dropped, no error
            await tier.flush()
            assert results == ["error", "error"]
        finally:
            await tier.close()
            await redis.close()
