"""The in-memory account details: bounded, never stale across an eviction, empty while
changes go unheard; the notification payloads that carry the evictions; which requests
the in-memory path may answer."""

from __future__ import annotations

from services.api.detail_cache import ENTRY_OVERHEAD, DetailCache, Rendered
from services.api.detail_path import _bearer, _cacheable_domain
from services.kit.notify import (
    EVERY_ACCOUNT,
    MAX_PAYLOAD_BYTES,
    changed_domains,
    notification_payloads,
)


def rendered(tag: str, body: bytes = b'{"x":1}') -> Rendered:
    return Rendered(etag=f'"{tag}"'.encode(), body=body, content_type=b"application/json")


def listening(max_bytes: int = 10_000) -> DetailCache:
    cache = DetailCache(max_bytes)
    cache.resume()
    return cache


def read_through(cache: DetailCache, domain: str, value: Rendered) -> bool:
    return cache.store(domain, cache.reserve(domain), value)


def test_a_stored_detail_is_served_with_its_etag_and_body() -> None:
    cache = listening()
    assert cache.get("a.com") is None
    assert read_through(cache, "a.com", rendered("v1", b'{"domain":"a.com"}'))
    hit = cache.get("a.com")
    assert hit is not None and hit.etag == b'"v1"' and hit.body == b'{"domain":"a.com"}'
    assert cache.get("b.com") is None


def test_bounded_in_bytes_least_recently_used_goes_first() -> None:
    body = b"x" * 100
    per_entry = 100 + len(b'"a"') + ENTRY_OVERHEAD  # 303 bytes
    cache = listening(max_bytes=3 * per_entry)
    for name in ("a", "b", "c"):
        assert read_through(cache, f"{name}.com", rendered(name, body))
    assert cache.get("a.com") is not None  # a is now the most recently used
    assert read_through(cache, "d.com", rendered("d", body))
    assert cache.get("b.com") is None  # b was the least recently used
    assert [cache.get(f"{n}.com") is not None for n in "acd"] == [True, True, True]
    assert len(cache) == 3 and cache.size_bytes == 3 * per_entry


def test_a_detail_larger_than_the_whole_cache_is_not_kept() -> None:
    cache = listening(max_bytes=ENTRY_OVERHEAD + 10)
    assert not read_through(cache, "a.com", rendered("a", b"x" * 50))
    assert len(cache) == 0 and cache.size_bytes == 0


def test_replacing_an_entry_keeps_the_byte_count_right() -> None:
    cache = listening()
    read_through(cache, "a.com", rendered("v1", b"x" * 10))
    read_through(cache, "a.com", rendered("v2", b"x" * 30))
    hit = cache.get("a.com")
    assert hit is not None and hit.etag == b'"v2"'
    assert cache.size_bytes == 30 + 4 + ENTRY_OVERHEAD


def test_an_eviction_during_a_read_refuses_the_read_s_old_result() -> None:
    cache = listening()
    ticket = cache.reserve("a.com")  # the read starts, sees the old row...
    cache.evict(["a.com"])  # ...the writer commits and its notification arrives...
    assert not cache.store("a.com", ticket, rendered("old"))  # ...the old row is refused
    assert cache.get("a.com") is None
    assert read_through(cache, "a.com", rendered("new"))  # a read after the eviction is kept


def test_concurrent_misses_share_a_ticket_and_only_one_stores() -> None:
    cache = listening()
    first, second = cache.reserve("a.com"), cache.reserve("a.com")
    assert first == second
    assert cache.store("a.com", first, rendered("v1"))
    assert not cache.store("a.com", second, rendered("v1"))
    hit = cache.get("a.com")
    assert hit is not None and hit.etag == b'"v1"'


def test_evicting_removes_only_the_named_accounts() -> None:
    cache = listening()
    for name in ("a", "b", "c"):
        read_through(cache, f"{name}.com", rendered(name))
    cache.evict(["a.com", "c.com", "unknown.com"])
    assert [cache.get(f"{n}.com") is not None for n in "abc"] == [False, True, False]


def test_suspended_it_serves_nothing_stores_nothing_and_forgets_everything() -> None:
    cache = DetailCache(10_000)
    assert not cache.active and cache.reserve("a.com") is None  # starts not listening
    cache.resume()
    read_through(cache, "a.com", rendered("a"))
    ticket = cache.reserve("b.com")  # a read in flight when the listener is lost
    cache.suspend()
    assert cache.get("a.com") is None and not cache.store("b.com", ticket, rendered("b"))
    cache.resume()  # listening again: the entry from before the loss is gone for good
    assert cache.get("a.com") is None and len(cache) == 0 and cache.size_bytes == 0


def test_clear_voids_reads_in_flight() -> None:
    cache = listening()
    ticket = cache.reserve("a.com")
    cache.clear()
    assert not cache.store("a.com", ticket, rendered("a"))


def test_released_reservations_do_not_accumulate() -> None:
    cache = DetailCache(10_000, max_pending=2)
    cache.resume()
    stale = cache.reserve("a.com")
    cache.reserve("b.com")
    cache.reserve("c.com")  # the table of reads in flight was full: it starts over
    assert not cache.store("a.com", stale, rendered("a"))
    ticket = cache.reserve("d.com")
    cache.release("d.com", ticket)
    assert not cache.store("d.com", ticket, rendered("d"))


def test_payloads_are_sorted_unique_newline_separated() -> None:
    assert notification_payloads(["b.com", "a.com", "b.com"]) == ["a.com\nb.com"]
    assert notification_payloads([]) == []
    assert changed_domains("a.com\nb.com") == ["a.com", "b.com"]


def test_payloads_are_split_below_the_postgresql_limit_without_losing_a_name() -> None:
    names = [f"account-{i:05d}.example.com" for i in range(1000)]  # 25 bytes each
    payloads = notification_payloads(names)
    # 25 bytes + 1 separator: 304 names fit in 7,900 bytes (304 * 26 - 1 = 7,903 > 7,900,
    # so 303 per payload: 7,877 bytes), hence 4 payloads for 1,000 names.
    assert [len(p.split("\n")) for p in payloads] == [303, 303, 303, 91]
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in payloads)
    assert [n for p in payloads for n in changed_domains(p) or []] == names


def test_names_that_cannot_be_told_apart_turn_into_forget_everything() -> None:
    assert notification_payloads(["a.com", "bad\nname"]) == [EVERY_ACCOUNT]
    assert notification_payloads(["a.com", ""]) == [EVERY_ACCOUNT]
    assert notification_payloads(["x" * (MAX_PAYLOAD_BYTES + 1)]) == [EVERY_ACCOUNT]
    assert changed_domains(EVERY_ACCOUNT) is None


def test_only_detail_reads_the_route_would_accept_take_the_fast_path() -> None:
    def domain(path: str, method: str = "GET") -> str | None:
        return _cacheable_domain({"type": "http", "method": method, "path": path})

    assert domain("/v1/accounts/WWW.Acct03.COM") == "acct03.com"  # as the route normalises
    assert domain("/v1/accounts/acct03.com/timeline") is None
    assert domain("/v1/accounts/acct03.com", method="HEAD") is None
    assert domain("/v1/accounts") is None and domain("/v1/accounts/") is None
    assert domain("/v1/accounts/acct03.com\n") is None  # `$` would allow it, fullmatch not
    assert domain("/v1/accounts/no_underscores.com") is None
    assert domain("/v1/accounts/www.io") == "www.io"  # "www." kept where it is the domain
    assert domain("/v1/accounts/a-.com") is None
    assert domain("/v1/accounts/" + "a" * 250 + ".com") is None  # longer than 253


def test_bearer_tokens_are_read_as_the_route_reads_them() -> None:
    assert _bearer(b"Bearer abc") == "abc" and _bearer(b"bearer abc") == "abc"
    assert _bearer(b"Basic abc") is None and _bearer(b"Bearer ") is None
    assert _bearer(b"Bearer") is None and _bearer(None) is None and _bearer(b"") is None
