"""The Redis history layout, without Redis: key names, the scripts' arguments, and reading their answers back.

`keys` names a channel's stream and meta hash; `append_args` and `read_args`
are what ``EVAL APPEND`` / ``EVAL READ`` are given (from the number of keys
on); `parse_logged` reads a numbered pub/sub payload; `page` turns
``READ``'s answer into a `Page`, dropping expired entries. The scripts
themselves run against a real redis-server in test_history.py.
"""

from __future__ import annotations

import pytest

from drizzle_gateway.brokers.redis import streams
from drizzle_gateway.brokers.redis.idempotency import Once
from drizzle_gateway.wire.history import Logged, Page, Position, Retention

NOW_MS = 1_700_000_000_000


def test_a_channels_stream_and_meta_hash_live_under_the_prefix():
    assert streams.keys("app:", "chat.lobby") == ["app:h:chat.lobby", "app:h:chat.lobby:meta"]
    assert streams.keys("", "x") == ["h:x", "h:x:meta"]


def test_the_meta_hash_outlives_the_stream():
    assert streams.meta_ttl_ms(Retention(10), 86400.0) == 86_400_000
    assert streams.meta_ttl_ms(Retention(10, ttl=3.5), 2.0) == 3500  # never shorter than the stream's ttl
    assert streams.meta_ttl_ms(Retention(10, ttl=1.0), 2.0) == 2000
    assert streams.META_TTL == 86400.0


def test_append_args_name_three_keys_then_the_scripts_values():
    args = streams.append_args("app:", "feed.x", b'{"n":1}', Retention(100, ttl=30), "origin-a", 7, meta_ttl=60)
    count, stream, meta, applied, epoch, body, size, stream_ttl, channel, origin, sequence, meta_ttl, token, window = \
        args
    assert (count, stream, meta) == (3, "app:h:feed.x", "app:h:feed.x:meta")
    assert applied == "app:h:feed.x:meta:applied:origin-a"
    assert len(epoch) == 8 and int(epoch, 16) >= 0  # a fresh epoch, used only if the channel has none
    assert (body, size, stream_ttl, channel, origin, sequence, meta_ttl) == (
        b'{"n":1}', 100, 30_000, "app:feed.x", "origin-a", 7, 60_000)
    assert (token, window) == ("", 0)  # no idempotency key


def test_append_args_with_an_idempotency_key_name_it_fourth_with_the_token_and_window():
    once = Once("k-1", "origin-a:9", 300_000)
    args = streams.append_args("app:", "feed.x", b'{"n":1}', Retention(100), "origin-a", 7, meta_ttl=60, once=once)
    assert args[:5] == [4, "app:h:feed.x", "app:h:feed.x:meta", "app:h:feed.x:meta:applied:origin-a",
                        "app:i:feed.x:k-1"]
    assert args[-2:] == ["origin-a:9", 300_000]


def test_a_stream_without_a_ttl_expires_with_the_meta_hash():
    args = streams.append_args("p:", "c", b"{}", Retention(5), "o", 1)
    assert (args[7], args[11]) == (86_400_000, 86_400_000)


def test_read_args_name_two_keys_since_count_and_whether_to_make_the_meta_hash():
    retention = Retention(10, ttl=5)
    args = streams.read_args("p:", "c", 4, 20, retention, create=True, meta_ttl=60)
    assert args[:3] == [2, "p:h:c", "p:h:c:meta"] and len(args[3]) == 8
    assert args[4:] == [4, 20, 60_000]
    assert streams.read_args("p:", "c", None, 0, retention, create=False)[4:] == [-1, 0, 0]


def test_parse_logged_reads_the_position_then_the_json():
    assert streams.parse_logged(b'#e1a2b3c4:42 {"text":"a b"}') == (Position("e1a2b3c4", 42), b'{"text":"a b"}')
    assert streams.LOGGED_MARK == ord("#")
    for malformed in (b"#e1:x {}", b"#e1 {}", b"#:"):
        with pytest.raises(ValueError):
            streams.parse_logged(malformed)


def entry(offset: int, stamped_ms: int, data: bytes) -> list:
    """One stream entry as XRANGE answers it: its id and flat fields."""
    return [f"{offset}-0".encode(), [b"t", str(stamped_ms).encode(), b"d", data]]


def answer(offset: int, entries: list, epoch: bytes | str = b"e1") -> list:
    """READ's answer: epoch, offset, Redis's time in ms, entries (a decoding client gives text, not bytes)."""
    return [epoch, str(offset).encode(), str(NOW_MS).encode(), entries]


def test_page_after_a_position_is_complete_when_it_starts_right_after_it():
    entries = [entry(n, NOW_MS, b'{"n":%d}' % n) for n in (3, 4, 5)]
    page = streams.page(answer(5, entries), Retention(10), Position("e1", 2), None)
    assert page == Page(Position("e1", 5), [Logged(3, {"n": 3}), Logged(4, {"n": 4}), Logged(5, {"n": 5})], True)
    assert streams.page(answer(5, entries), Retention(10), Position("e1", 2), 2).events == [
        Logged(3, {"n": 3}), Logged(4, {"n": 4})]  # the first after since
    assert not streams.page(answer(5, entries), Retention(10), Position("e1", 1), None).complete  # 2 is gone
    assert streams.page(answer(5, []), Retention(10), Position("e1", 5), None).complete  # nothing missed


def test_page_without_a_position_gives_the_last_events_oldest_first():
    newest_first = [entry(n, NOW_MS, b"%d" % n) for n in (5, 4, 3)]  # as XREVRANGE answers
    page = streams.page(answer(5, newest_first), Retention(10), None, 2)
    assert page == Page(Position("e1", 5), [Logged(4, 4), Logged(5, 5)], True)


def test_page_from_another_epoch_or_beyond_the_channel_is_incomplete():
    oldest_first = [entry(n, NOW_MS, b"%d" % n) for n in (1, 2, 3)]  # as XRANGE answers
    for since in (Position("e0", 0), Position("e1", 9)):
        page = streams.page(answer(3, oldest_first), Retention(10), since, None)
        assert page == Page(Position("e1", 3), [Logged(1, 1), Logged(2, 2), Logged(3, 3)], False)
        assert streams.page(answer(3, oldest_first), Retention(10), since, 2).events == [Logged(2, 2), Logged(3, 3)]


def test_page_drops_entries_older_than_the_ttl_or_than_newer_than():
    entries = [entry(1, NOW_MS - 10_000, b"1"), entry(2, NOW_MS - 9_999, b"2"), entry(3, NOW_MS - 1, b"3"),
               entry(4, NOW_MS, b"4")]
    page = streams.page(answer(4, entries, epoch="e1"), Retention(10, ttl=10), Position("e1", 0), None)
    assert ([logged.offset for logged in page.events], page.complete) == ([2, 3, 4], False)  # 1 is 10 s old
    newer = streams.page(answer(4, entries), Retention(10), Position("e1", 0), None, newer_than=NOW_MS / 1000)
    assert [logged.offset for logged in newer.events] == [4]  # 3 was stamped a millisecond before


def test_page_reads_fields_given_as_a_mapping():
    entries = [[b"1-0", {b"t": str(NOW_MS).encode(), b"d": b'"a"'}]]
    assert streams.page(answer(1, entries), Retention(10), None, None).events == [Logged(1, "a")]
