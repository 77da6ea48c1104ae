"""The request path, top to bottom: one frame in, one reply or error frame out.

Every error a request can get is decided here, in the order a request meets them:

==================  ==============================================================
VALIDATION_ERROR    not a well-formed request: not JSON, not an object, no
                    ``request_id`` or ``action``, nested too deep (`InvalidFrame`)
RATE_LIMITED        over the connection's ``limits.rate`` (every frame counts)
SHUTTING_DOWN       the gateway is closing; reconnect
UNAUTHENTICATED     the gateway authenticates and this connection has not (the
                    text says why when an attempt was refused, `not_yet`)
RESOURCE_NOT_FOUND  no resource of that name
ACTION_NOT_FOUND    no action of that name on it
INVALID_FIELDS      ``fields`` names something the output does not send
INVALID_DATA        ``data`` does not load with the action's input schema (an array
                    where the action has none: VALIDATION_ERROR)
FORBIDDEN           the action's ``allow`` said no
(the action's own)  an `ActionError` the action raised (built-ins: TOPIC_NOT_FOUND,
                    LIMIT_EXCEEDED, UNAVAILABLE...)
TIMEOUT             the action ran longer than ``limits.action_timeout`` (a
                    stream: waited that long for its next item)
INTERNAL_ERROR      anything else the action raised (logged, never sent)
==================  ==============================================================

Nothing here knows about sockets: `intake` and `respond` take a `Session`
and give back text frames, which the session hands to its transport.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from ..contract.permissions import require
from ..wire.dialect import InvalidFrame, NestedTooDeep, Request
from ..wire.errors import ActionError, ErrorCode
from .auth import requires_user
from .metrics import OK
from .streams import Ended, relay

if TYPE_CHECKING:
    from .hub import Hub
    from .session import Session

logger = logging.getLogger("drizzle_gateway")

INTERNAL_ERROR_TEXT = "internal error; the server log has the details"


def intake(session: Session, message: str | bytes) -> Request | str:
    """The request a frame carries, or the error frame refusing it (VALIDATION_ERROR, RATE_LIMITED, SHUTTING_DOWN)."""
    try:
        request = parse(session, message)
    except InvalidFrame as invalid:
        return session.protocol.error(invalid.request_id, session.throttled() or invalid)
    refusal = session.throttled() or _shutting_down(session.hub)
    if refusal is not None:
        if session.hub.metrics is not None:
            session.hub.metrics.request_done(request, refusal.code)
        return session.protocol.error(request.request_id, refusal)
    return request


def parse(session: Session, message: str | bytes) -> Request:
    """The dialect's parse, then the shape limits (depth, keys); raises `InvalidFrame`.

    A frame too deep for the parser is refused with ``max_depth``'s error, as a shallower deep one is.
    """
    limits = session.hub.limits
    try:
        request = session.protocol.parse(message)
    except NestedTooDeep as deep:
        if limits.max_depth is None:
            raise
        raise InvalidFrame(limits.too_deep, deep.request_id) from None
    if not isinstance(message, str) or limits.may_exceed_shape(message):
        problem = limits.shape_error(request.raw)
        if problem is not None:
            raise InvalidFrame(problem, request.request_id)
    return request


def _shutting_down(hub: Hub) -> ActionError | None:
    if hub.closing:
        return ActionError(ErrorCode.SHUTTING_DOWN, "server is shutting down; reconnect")
    return None


async def respond(session: Session, request: Request) -> str:
    """Run ``request``; its reply frame, or the error frame of what went wrong.

    Runs in a task (`runner.Runner`); once it waits, that task is the
    request's own, with ``limits.action_timeout`` (see `Deadlines`): cancelled by its deadline,
    it answers TIMEOUT; cancelled otherwise (the connection closed, the
    gateway shut down), it answers nothing. A reply or error frame that
    cannot be encoded is logged and answered INTERNAL_ERROR: a request is
    always answered. With metrics, each answer is counted by its outcome
    code and timed.
    """
    metrics = session.hub.metrics
    if metrics is None:
        return (await _answer(session, request))[0]
    began = metrics.clock()
    frame, code = await _answer(session, request)
    metrics.request_done(request, code, began)
    return frame


async def _answer(session: Session, request: Request) -> tuple[str, str]:
    """`respond`'s frame, and its outcome code (`OK` or the error's)."""
    try:
        return session.protocol.reply(request.request_id, await run(session, request)), OK
    except ActionError as exc:
        error = exc
    except Ended as end:  # a streaming action's items went out: this is its end frame
        return end.frame, OK
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or not session.hub.deadlines.expired(task):
            raise
        task.uncancel()
        timeout = session.hub.limits.action_timeout
        error = ActionError(ErrorCode.TIMEOUT, f"the action took longer than {timeout}s and was cancelled",
                            {"timeout": timeout})
    except Exception:
        logger.exception("request %r (%s.%s) failed", request.request_id, request.resource, request.action)
        error = _internal_error()
    try:
        return session.protocol.error(request.request_id, error), error.code
    except Exception:
        logger.exception("request %r (%s.%s): its error frame cannot be encoded",
                         request.request_id, request.resource, request.action)
        return session.protocol.error(request.request_id, _internal_error()), ErrorCode.INTERNAL_ERROR


def _internal_error() -> ActionError:
    return ActionError(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_TEXT)


def not_yet(session: Session) -> str:
    """What an anonymous connection is told: to authenticate, or that its last attempt was refused and why."""
    if session.refusal is None:
        return "authenticate first (send __auth__ with a token)"
    return f"{session.refusal}; send __auth__ with a valid token"


async def run(session: Session, request: Request) -> Any:
    """One request's result: auth gate, find, fields, load, permission, invoke, dump.

    A streaming action sends its items from here (`streams.relay`) and raises `Ended`.

    An action's ``allow(user, params)`` gets ``{"resource", "action", "data"}``
    with the loaded input as ``data``.
    """
    hub = session.hub
    if hub.authenticate is not None and session.user is None and requires_user(request.action, request.resource):
        raise ActionError(ErrorCode.UNAUTHENTICATED, not_yet(session))
    resource, act = hub.registry.find_action(request)  # the registry's lookup: RESOURCE_ or ACTION_NOT_FOUND
    selection = act.select(request.fields)
    data = act.load(request.data)
    if act.allow is not None:
        params = {"resource": request.resource, "action": act.name, "data": data}
        await require(act.allow, session.user, params, f"call {act.name!r}")
    result = await act.invoke(resource(session, hub.registry), data, request)
    if act.stream:  # set when the action was declared: an async generator's items go out one by one
        await relay(session, request, result, None if selection is None else functools.partial(act.dump, selection))
    return result if selection is None else act.dump(selection, result)

