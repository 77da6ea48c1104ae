"""What a publish puts on Redis pub/sub: ``<origin> <json>``, with an origin of the sender's own."""

from __future__ import annotations

from drizzle_gateway.brokers.redis.messages import ORIGIN_LENGTH, new_origin, tagged


def test_an_origin_is_32_hex_characters_and_fresh_each_time():
    origins = {new_origin() for _ in range(50)}
    assert len(origins) == 50
    assert all(len(origin) == ORIGIN_LENGTH and int(origin, 16) >= 0 for origin in origins)


def test_a_plain_message_is_the_origin_a_space_and_the_json():
    origin = new_origin()
    message = tagged(origin, b'{"text":"a b"}')
    assert message == f"{origin} ".encode() + b'{"text":"a b"}'
    assert message[ORIGIN_LENGTH:ORIGIN_LENGTH + 1] == b" "  # where every reader looks for the separator
