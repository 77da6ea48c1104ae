"""Request frames for the test resources (tests/support/resources.py), and the documented weight of an error frame."""

from __future__ import annotations

ERROR_FRAME_BYTES = 32 * 1024  # docs/security.md: an error frame's weight, besides the request_id it echoes


def nested(depth: int) -> dict:
    """A dict nested ``depth`` levels deep (``{"a": {"a": ...}}``)."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def call(request_id, resource="lab", name="plain", data=None) -> dict:
    """A request frame for ``resource``'s action ``name``, with ``data`` when given."""
    frame = {"request_id": request_id, "resource": resource, "action": name}
    if data is not None:
        frame["data"] = data
    return frame
