"""An asyncio client for drizzle_gateway, for services and for tests.

::

    async with Client("ws://127.0.0.1:8888/ws") as client:
        todo = await client.call("todos", "create", {"title": "milk"}, fields=["id"])
        await client.subscribe("chat.lobby")
        async for event in client.events():
            print(event.topic, event.data)

On topics with history the client remembers, per subscription, the
channel's epoch and the offset of the last event it delivered, and never
delivers an offset twice. After a dropped connection, `Client.reconnect`
opens a new socket and subscribes again with ``since``, so the events
missed meanwhile arrive first; its answer says, per topic, whether they
could all be recovered (``recovered: false``: reload your state)::

    replies = await client.reconnect()
    lost = [topic for topic, reply in replies.items() if reply.get("recovered") is False]

Or let the client do it: with ``auto_reconnect=True`` it reconnects on its
own, with backoff, and puts an `Event` with ``recovered=False`` among a
topic's events wherever some may be missing (`drizzle_gateway.client_reconnect`)::

    async with Client(url, auto_reconnect=True) as client:
        await client.subscribe("chat.lobby")
        async for event in client.events():
            if event.recovered is False:
                reload(event.topic)

When the server closes with a code after which reconnecting helps
(`ConnectionClosed.should_reconnect`: 1001 and 1012 when an instance shuts
down or drains for a deploy, 1006, 1011, 4008), wait `backoff_delay` first,
so that the clients of a drained instance do not all arrive at once, and
pass ``url`` to reconnect to another instance::

    attempt = 0
    while True:
        await asyncio.sleep(backoff_delay(attempt))
        try:
            await client.reconnect(url=next_instance())
            break
        except OSError:
            attempt += 1

While subscribed, offsets the server cannot deliver arrive as an `Event`
whose ``gap`` names them (a `Gap`: epoch, first and last offset), in their
place; reload what they covered. Should an offset ever jump within one epoch
without such a notice, the client reads the missing events with
``__history__`` (``since`` its position) before going on, and surfaces as a
gap whatever the history no longer holds.

With ``token=`` (or ``get_token=``, asked for a fresh token each time) the
client sends ``__auth__`` after every connect; a refused token fails
`Client.connect` with the gateway's `RemoteError` (``UNAUTHENTICATED: the
token was refused``). When the gateway says the identity expires, the
client sends ``__auth__`` again with a token from ``get_token`` ahead of
the expiry (`drizzle_gateway.client_tokens`)::

    async with Client(url, get_token=fetch_token) as client:
        ...

`Client.history` reads a topic's retained events as `Event` objects
(offset and epoch set), in a `History` that says where the channel stands.

`Client.subscribe`, `Client.unsubscribe`, `Client.ping`, `Client.schema` and
`Client.history` are safe to send twice, so after a transient refusal (``RATE_LIMITED``) they wait the
server's ``details.retry_after`` and are sent again, a bounded number of times
(see `retry_delay`). `Client.call` and `Client.request` never retry: an action
need not be idempotent. `Client.publish` sends an idempotency key (a random one
unless given), so when the connection drops before its reply it is sent again,
with the same key, on the next connection (`Client.reconnect`): the server
delivers it once whichever attempt reached it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .client_heartbeat import PingWatch
from .client_reconnect import Relinker
from .client_tokens import GetToken, Refresher, TokenSource
from .wire.dialect import SUBPROTOCOL, CloseCode, decode, encode
from .wire.history import Position
from .wire.idempotency import new_key
from .wire.presence import Member
from .wire.recovery import Arrival, Gap, RecoveryLog, Step, missing

logger = logging.getLogger("drizzle_gateway.client")

class RemoteError(Exception):
    """An error frame from the server: ``code``, ``message`` and ``details``."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class ConnectionClosed(Exception):
    """The websocket closed; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed ({code}: {reason})")
        self.code = code
        self.reason = reason

    @property
    def should_reconnect(self) -> bool:
        """What the close-code table says: reconnect (with backoff) after this close?"""
        code = CloseCode.ABNORMAL if self.code is None else self.code
        return code in CloseCode.RECONNECT or self.reason == "ping timed out"


def backoff_delay(attempt: int, *, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0,
                  jitter: float = 0.5, uniform: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect attempt number ``attempt`` (0 for the first), as drizzle.js waits.

    The cap grows as ``initial * factor ** attempt`` up to ``maximum``; a
    random share of it (``jitter``: 0 none, 1 all of it) is spread out, so
    the many clients a drained instance closes at once do not all come back
    at the same moment.
    """
    cap = min(maximum, initial * factor ** max(0, attempt))
    return cap * (1 - jitter) + cap * jitter * uniform()


def retry_delay(error: BaseException) -> float | None:
    """Seconds to wait before sending a refused request again, or None when the refusal is final.

    ``RATE_LIMITED`` waits its ``details.retry_after``; any other error (FORBIDDEN,
    TOPIC_NOT_FOUND, LIMIT_EXCEEDED of ``max_subscriptions``, a timeout, a closed
    connection...) is final.
    """
    if not isinstance(error, RemoteError):
        return None
    details = error.details if isinstance(error.details, dict) else {}
    if error.code == "RATE_LIMITED":
        seconds = details.get("retry_after")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 <= seconds < float("inf"):
            return float(seconds)
    return None


@dataclass(frozen=True)
class Event:
    """One published message received on a subscribed topic (``offset`` on topics with history).

    In a subscription's stream, ``epoch`` is set on the first event after
    the channel's history was lost (Redis restarted without persistence):
    events before it may have been missed, as a reply with ``recovered:
    false`` would say. Events read with `BaseClient.history` all carry it.
    ``gap`` is set (and ``data`` None) when the offsets it names cannot be
    delivered: reload what they covered. ``recovered`` is False (and
    ``data`` None) on the notice an automatic reconnect puts in a topic's
    place when events published while the client was away may be missing.

    On a subscription with ``join_leave``, ``presence`` is ``"join"`` or
    ``"leave"`` for a member's change (``key`` is the member's key and
    ``data`` its entry), or ``"stale"`` when changes were not sent (over the
    gateway's rate): list the members again with `BaseClient.presence`.
    """

    topic: str
    data: Any
    offset: int | None = None
    epoch: str | None = None
    gap: Gap | None = None
    presence: str | None = None
    key: str | None = None
    recovered: bool | None = None


class History(list[Event]):
    """The events `BaseClient.history` read, oldest first, and where their channel stands.

    ``epoch`` and ``offset`` are the channel's epoch and latest offset;
    ``recovered`` (with ``since``) says whether no event after ``since`` is
    missing (False: some are gone, or the epoch changed), else None.
    """

    def __init__(self, events: list[Event], epoch: str, offset: int, recovered: bool | None) -> None:
        super().__init__(events)
        self.epoch = epoch
        self.offset = offset
        self.recovered = recovered


class BaseClient:
    """What every drizzle client does, whatever carries its frames: request ids, replies, events, retries.

    Subclasses open and close the link (`connect`, `close`), send text
    (`_send`), and hand each frame they read to `_receive` and the end of
    the link to `_ended_with`.
    """

    def __init__(self, *, timeout: float = 10.0, retries: int = 10, max_retry_delay: float = 10.0,
                 token: str | None = None, get_token: GetToken | None = None, refresh_ahead: float = 30.0,
                 auto_reconnect: bool = False, max_reconnect_delay: float = 30.0) -> None:
        self.timeout = timeout
        self.auto_reconnect = auto_reconnect
        self.relinker = Relinker(self._relink, lambda attempt: backoff_delay(attempt, maximum=max_reconnect_delay),
                                 _refused, self._gave_up)
        self._relink_line = asyncio.Lock()  # one reconnect at a time: the automatic one, or the caller's
        self.tokens = TokenSource(token, get_token)
        self.refresher = Refresher(self._authenticate, refresh_ahead)
        self.retries = retries
        self.max_retry_delay = max_retry_delay
        self._retry_line = asyncio.Lock()
        self._retry_gate = 0.0
        self._retry_pace = 0.0
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._gone: asyncio.Future | None = None  # resolves when the link ends; None before connect
        self._next_link = asyncio.Event()  # set when the next link is up and signed in (replaced by each one)
        self._linking: asyncio.Event | None = None  # the last link's, set once this one is signed in
        self._ended_for_good = False  # closed by `close`, not to be reconnected
        self._subscriptions: dict[str, list[str] | None] = {}
        self._attendance: dict[str, dict[str, Any]] = {}  # per topic: the presence options it subscribed with
        self._log: RecoveryLog[None] = RecoveryLog()  # per topic with history: the last offset delivered
        self._subscribing: dict[Any, str] = {}
        self._relinking = False  # in `reconnect`: the old link's end is not a drop to recover from
        self._announcing: set[str] = set()  # topics whose subscribe reply gets a notice when it recovered nothing
        self._streams: dict[Any, asyncio.Queue[dict[str, Any] | None]] = {}  # per streaming request: its frames
        self._held: dict[str, list[dict[str, Any]]] = {}  # per topic: events that wait while a hole is read
        self._fills: set[asyncio.Task] = set()
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def connect(self) -> BaseClient:  # pragma: no cover - interface
        """Open the link."""
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - interface
        """Close the link; returns within ``timeout`` seconds."""
        raise NotImplementedError

    async def _close_link(self) -> None:
        """Close the link to open another (`reconnect`): publishes in flight are sent again on the next."""
        await self.close()

    async def _send(self, text: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def __aenter__(self) -> BaseClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _started(self) -> None:
        """A new link is up: forget how the last one ended."""
        self.close_code = self.close_reason = None
        self._ended_for_good = False
        self._gone = asyncio.get_running_loop().create_future()
        self._linking, self._next_link = self._next_link, asyncio.Event()

    async def _sign_in(self) -> None:
        """With a token (or ``get_token``): authenticate the new link and plan its refreshes.

        Then what waits for the next link (a publish to send again) goes on.
        A refusal closes the client and raises the gateway's `RemoteError`;
        during an automatic reconnect any other failure closes only the link,
        for the next attempt.
        """
        if self.tokens.given:
            try:
                reply = await self._authenticate()
            except BaseException as failed:
                if self.relinker.running and not _refused(failed):
                    await self._close_link()
                else:
                    await self.close()
                raise
            if self.tokens.renewable:
                self.refresher.schedule(reply)
        linked, self._linking = self._linking, None
        if linked is not None:
            linked.set()

    async def _authenticate(self) -> Any:
        """Send ``__auth__`` with a token from the client's source; the reply's data."""
        return await self.request({"action": "__auth__", "data": {"token": await self.tokens.fetch()}})

    # -- frames in ------------------------------------------------------------

    def _receive(self, frame: dict[str, Any]) -> None:
        """One frame read from the link: a reply, an error or an event."""
        if "topic" in frame and "request_id" not in frame:
            self._on_event(frame)
            return
        stream = self._streams.get(frame.get("request_id"))
        if stream is not None:
            stream.put_nowait(frame)
            return
        topic = self._subscribing.pop(frame.get("request_id"), None)
        if topic is not None:
            self._subscribed(topic, frame)
        future = self._pending.pop(frame.get("request_id"), None)
        if future is None or future.done():
            return
        if "code" in frame:
            future.set_exception(RemoteError(frame["code"], frame.get("error", ""), frame.get("details")))
        else:
            future.set_result(frame.get("data"))

    def _subscribed(self, topic: str, frame: dict[str, Any]) -> None:
        """The reply to a subscribe: where the live events take over, and the notice of what was not recovered."""
        data = frame.get("data")
        if isinstance(data, dict) and "epoch" in data:  # where the live events take over from the replayed ones
            self._log.reach(topic, Position(data["epoch"], data["offset"]))
        if topic in self._announcing and "code" not in frame:  # in frame order: after replayed events, before live
            self._announcing.discard(topic)
            if not (isinstance(data, dict) and data.get("recovered") is True):
                self._events.put_nowait(Event(topic, None, recovered=False))

    def _ended_with(self, code: int | None, reason: str | None) -> None:
        """The link ended with this close code and reason: fail what waits for a reply."""
        self.close_code, self.close_reason = code, reason
        self.refresher.stop()
        closed = ConnectionClosed(code, reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(closed)
        self._pending.clear()
        for stream in self._streams.values():
            stream.put_nowait(None)
        if self.auto_reconnect and not self._ended_for_good and (
                self.relinker.running or (not self._relinking and closed.should_reconnect)):
            self.relinker.start()  # the events go on after the next link
        else:
            self._events.put_nowait(None)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    def _on_event(self, frame: dict[str, Any]) -> None:
        if isinstance(frame.get("presence"), str):
            self._events.put_nowait(Event(frame["topic"], frame.get("member"), presence=frame["presence"],
                                          key=frame.get("key")))
            return
        topic, offset, epoch = frame["topic"], frame.get("offset"), frame.get("epoch")
        held = self._held.get(topic)
        if held is not None:  # a hole before it is being read
            held.append(frame)
            return
        if isinstance(frame.get("gap"), dict):
            self._on_gap(topic, Gap(frame["epoch"], frame["gap"]["from"], frame["gap"]["to"]))
            return
        last = self._log.position(topic)
        known = epoch if epoch is not None else last.epoch if last is not None else None
        if offset is not None and known is not None:  # judged in the epoch it names, else in the one reached
            verdict = self._log.arrive(topic, Position(known, offset), fill=True)
            if verdict.step is Step.DROP:
                logger.debug("%s: offset %d delivered already; dropped", topic, offset)
                return
            if verdict.step is Step.FILL:
                assert last is not None
                self._fill(topic, last, frame)
                return
            epoch = verdict.epoch
            if epoch is not None:
                logger.warning("%s: its history was lost (new epoch %s); events may have been missed", topic, epoch)
        self._events.put_nowait(Event(topic, frame.get("data"), offset, epoch))

    def _on_gap(self, topic: str, gap: Gap) -> None:
        """Surface the offsets of ``gap`` not delivered yet as one gap `Event`, and move past them."""
        verdict = self._log.arrive(topic, gap.position, lost=True)
        if verdict.arrival is Arrival.DUPLICATE:
            return  # delivered already
        if verdict.gap is not None:  # its offsets not delivered yet
            gap = Gap(gap.epoch, max(gap.first, verdict.gap.first), gap.last)
        else:  # an epoch this client stands nowhere in: the whole notice
            self._log.reach(topic, gap.position)
        logger.warning("%s: offsets %d-%d cannot be delivered", topic, gap.first, gap.last)
        self._events.put_nowait(Event(topic, None, gap=gap))

    def _fill(self, topic: str, last: Position, frame: dict[str, Any]) -> None:
        """An offset jumped past ``last`` without a gap notice: read the hole from history, then go on."""
        self._held[topic] = [frame]
        task = asyncio.ensure_future(self._read_hole(topic, last, Position(last.epoch, frame["offset"])))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _read_hole(self, topic: str, last: Position, until: Position) -> None:
        """Deliver the events after ``last`` and before ``until`` from history, a gap for the rest, then the held."""
        events: list[dict[str, Any]] = []
        data: dict[str, Any] = {"topic": topic, "since": {"epoch": last.epoch, "offset": last.offset},
                                "limit": until.offset - last.offset - 1}
        if self._subscriptions.get(topic) is not None:
            data["fields"] = self._subscriptions[topic]
        try:
            page = await self.request({"action": "__history__", "data": data})
            if page.get("epoch") == last.epoch:
                events = [event for event in page["events"] if last.offset < event["offset"] < until.offset]
        except Exception as exc:  # noqa: BLE001 - whatever failed, the hole is surfaced as a gap
            logger.warning("%s: could not read offsets %d-%d from history (%s)", topic, last.offset + 1,
                           until.offset - 1, exc)
        finally:
            held = self._held.pop(topic, [])
        for offset, event in [(event["offset"], event) for event in events] + [(until.offset, None)]:
            hole = missing(self._log.position(topic), Position(last.epoch, offset))
            if hole is not None:
                self._on_gap(topic, hole)
            if event is not None:
                self._on_event({"topic": topic, "data": event["data"], "offset": offset})
        for frame in held:
            self._on_event(frame)

    def position(self, topic: str) -> Position | None:
        """The epoch and last offset delivered on ``topic`` (topics with history), or None."""
        return self._log.position(topic)

    # -- requests -------------------------------------------------------------

    async def request(self, frame: dict[str, Any], timeout: float | None = None) -> Any:
        """Send a request frame (a ``request_id`` is added) and await its reply's data."""
        if self._gone is None:
            raise RuntimeError(f"not connected; use 'async with {type(self).__name__}(...)' or connect()")
        if self._gone.done():
            raise ConnectionClosed(self.close_code, self.close_reason)
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if frame.get("action") == "__subscribe__":
            self._subscribing[request_id] = frame["data"]["topic"]
        try:
            await self._send(encode({"request_id": request_id, **frame}))
            return await asyncio.wait_for(future, timeout or self.timeout)
        finally:
            self._pending.pop(request_id, None)
            self._subscribing.pop(request_id, None)

    async def _request_retrying(self, frame: dict[str, Any]) -> Any:
        """`request`, sent again after each transient refusal (`retry_delay`) while retries last.

        While retries wait, the server has said "not now", so later requests queue behind them.
        """
        loop = asyncio.get_running_loop()
        in_line = self._retry_line.locked()
        attempt = 0
        while True:
            try:
                if not in_line:
                    return await self.request(frame)
                async with self._retry_line:
                    wait = max(0.0, self._retry_gate - loop.time())
                    if wait > 0 and self._gone is not None:
                        await asyncio.wait({self._gone}, timeout=wait)  # ends early if the connection closes
                    try:
                        return await self.request(frame)
                    finally:
                        self._retry_gate = max(self._retry_gate, loop.time() + self._retry_pace)
            except RemoteError as exc:
                delay = retry_delay(exc)
                if delay is None or delay > self.max_retry_delay or attempt >= self.retries:
                    raise
                self._retry_pace = delay
                self._retry_gate = max(self._retry_gate, loop.time() + delay)
                attempt += 1
                in_line = True
                logger.debug("%s refused with %s; retry %d in %.3f s", frame.get("action"), exc.code, attempt, delay)

    async def call(
        self, resource: str, action: str, data: dict | list | None = None, *, fields: list[str] | None = None
    ) -> Any:
        """Call ``resource.action``; returns the reply's data or raises `RemoteError` (never retried)."""
        frame: dict[str, Any] = {"resource": resource, "action": action}
        if data is not None:
            frame["data"] = data
        if fields is not None:
            frame["fields"] = list(fields)
        return await self.request(frame)

    async def stream(
        self, resource: str, action: str, data: dict | list | None = None, *, fields: list[str] | None = None
    ) -> AsyncIterator[Any]:
        """Call a streaming action; its items as they arrive (never retried).

        ``async for item in client.stream("todos", "search", {"q": "milk"}, fields=["id"])``.
        An error frame raises `RemoteError` after the items before it; a dropped
        connection raises `ConnectionClosed`. Leaving the loop early cancels the
        stream on the server (``__cancel__``) once the generator is closed:
        at once with ``contextlib.aclosing``, else when it is dropped. Items the
        loop has not taken yet wait in memory. An action that does not stream
        gives its one reply as the only item.
        """
        if self._gone is None:
            raise RuntimeError(f"not connected; use 'async with {type(self).__name__}(...)' or connect()")
        if self._gone.done():
            raise ConnectionClosed(self.close_code, self.close_reason)
        request: dict[str, Any] = {"request_id": next(self._ids), "resource": resource, "action": action}
        if data is not None:
            request["data"] = data
        if fields is not None:
            request["fields"] = list(fields)
        frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._streams[request["request_id"]] = frames
        ended = False
        try:
            await self._send(encode(request))
            while True:
                frame = await frames.get()
                if frame is None:
                    ended = True
                    raise ConnectionClosed(self.close_code, self.close_reason)
                if "code" in frame:
                    ended = True
                    raise RemoteError(frame["code"], frame.get("error", ""), frame.get("details"))
                if frame.get("more") is not True:
                    ended = True
                if "data" in frame:
                    yield frame["data"]
                if ended:
                    return
        finally:
            self._streams.pop(request["request_id"], None)
            if not ended and not self._gone.done():
                try:
                    await self.request({"action": "__cancel__", "data": {"request_id": request["request_id"]}})
                except (RemoteError, ConnectionClosed, TimeoutError) as exc:
                    logger.debug("stream %r: cancelling it failed (%s)", request["request_id"], exc)

    async def subscribe(self, topic: str, fields: list[str] | None = None, *,
                        since: Position | None = None, presence: dict[str, Any] | None = None,
                        join_leave: bool = False, member_fields: list[str] | None = None) -> Any:
        """Subscribe to a concrete channel such as ``chat.lobby``; retried after ``RATE_LIMITED``.

        On a topic with history the reply carries ``epoch`` and ``offset``,
        which the client remembers; with ``since`` the server first replays
        the events after it (those this client delivered already are
        dropped) and the reply says whether it ``recovered`` them all.
        On a topic with presence, ``presence`` is this subscription's entry
        (topics with ``client_presence``) and ``join_leave`` asks for the
        members' joins and leaves as events (`Event.presence`), cut to
        ``member_fields``; `reconnect` asks for them again.
        """
        data: dict[str, Any] = {"topic": topic}
        if fields is not None:
            data["fields"] = list(fields)
        if since is not None:
            data["since"] = {"epoch": since.epoch, "offset": since.offset}
        attendance = {key: value for key, value in (("presence", presence), ("join_leave", join_leave or None),
                                                    ("member_fields", member_fields)) if value is not None}
        reply = await self._request_retrying({"action": "__subscribe__", "data": {**data, **attendance}})
        self._subscriptions[topic] = list(fields) if fields is not None else None
        self._attendance[topic] = attendance
        return reply

    async def presence(self, topic: str, *, fields: list[str] | None = None, **params: str) -> list[Member]:
        """The members of a channel of a topic with presence; retried after ``RATE_LIMITED``.

        ``topic`` is a concrete channel, or a pattern whose ``{name}`` parts
        ``params`` fill. Each `Member` has its ``key``, its entry (``data``,
        cut to ``fields``) and its ``connections`` over every gateway process.
        """
        data: dict[str, Any] = {"topic": _channel(topic, params)}
        if fields is not None:
            data["fields"] = list(fields)
        reply = await self._request_retrying({"action": "__presence__", "data": data})
        return [Member(entry["key"], entry["member"], entry["connections"]) for entry in reply["members"]]

    async def unsubscribe(self, topic: str) -> Any:
        """Stop receiving ``topic``; retried after ``RATE_LIMITED``."""
        reply = await self._request_retrying({"action": "__unsubscribe__", "data": {"topic": topic}})
        self._subscriptions.pop(topic, None)
        self._attendance.pop(topic, None)
        self._log.forget(topic)
        return reply

    async def connected(self, timeout: float | None = None) -> None:
        """Return once a link is up and subscribed again (at once if it is); `ConnectionClosed` if none will be.

        Waits up to ``timeout`` seconds (default: the client's) for an automatic reconnect.
        """
        task = self.relinker.task
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout or self.timeout)  # whatever becomes of the attempts
            if not done:
                raise TimeoutError(f"not reconnected after {self.relinker.attempts} attempt(s)")
        if self._gone is None or self._gone.done():
            raise ConnectionClosed(self.close_code, self.close_reason)

    async def _relink(self) -> None:
        await self._reconnect(None, announce=True)

    def _gave_up(self, error: BaseException) -> None:
        """Automatic reconnecting stopped (a refused token): the events end."""
        self._events.put_nowait(None)

    def _stop_relinking(self) -> None:
        """The client is closed: no more reconnect attempts, and the events end if an attempt was pending."""
        if self.relinker.running:
            self.relinker.stop()
            self._events.put_nowait(None)

    async def reconnect(self, url: str | None = None) -> dict[str, Any]:
        """Open a new socket (closing the old one) and subscribe again to every topic; their replies by topic.

        A client with ``token`` or ``get_token`` authenticates the new socket
        first (``get_token`` is asked for a fresh token); a refusal raises.

        With ``url`` (`Client` only) the new socket goes there: another
        instance, after the one it was on closed with 1001 or 1012.

        Topics with history are subscribed with ``since`` the last event
        delivered, so what was published meanwhile arrives first, without
        duplicates; a reply with ``"recovered": false`` means events were
        lost (another epoch, or older than the history): reload state.
        Events still queued from the old socket stay queued. Requests in
        flight on the old socket fail with `ConnectionClosed`. A topic the
        server refuses now is dropped, logged, and its reply is the
        `RemoteError`; the other topics are subscribed all the same.
        """
        self.relinker.stop()  # the caller reconnects: no automatic attempt competes with it
        return await self._reconnect(url, announce=False)

    async def _reconnect(self, url: str | None, announce: bool) -> dict[str, Any]:
        """`reconnect`; with ``announce``, a ``recovered=False`` event for each topic that may have lost some."""
        async with self._relink_line:
            return await self._relink_now(url, announce)

    async def _relink_now(self, url: str | None, announce: bool) -> dict[str, Any]:
        if url is not None:
            self._move_to(url)
        self._announcing.clear()  # what an earlier attempt left
        self._relinking = True
        try:
            await self._close_link()
        finally:
            self._relinking = False
        if announce and self._ended_for_good:  # closed meanwhile: its events have ended, and stay ended
            raise ConnectionClosed(self.close_code, "the client was closed")
        kept = [event for event in _drain(self._events) if event is not None]
        for event in kept:
            self._events.put_nowait(event)
        await self.connect()
        replies = {}
        for topic, fields in list(self._subscriptions.items()):
            if announce:
                self._announcing.add(topic)
            try:
                replies[topic] = await self.subscribe(topic, fields, since=self._log.position(topic),
                                                      **self._attendance.get(topic, {}))
            except RemoteError as refused:
                logger.warning("%s: not subscribed again (%s)", topic, refused)
                self._subscriptions.pop(topic, None)
                self._log.forget(topic)
                replies[topic] = refused
                if announce:  # its last event: nothing more will come
                    self._announcing.discard(topic)
                    self._events.put_nowait(Event(topic, None, recovered=False))
                continue
            if isinstance(replies[topic], dict) and replies[topic].get("recovered") is False:
                logger.warning("%s: events were lost while disconnected (recovered: false)", topic)
        return replies

    async def history(self, topic: str, *, since: Position | None = None, limit: int | None = None,
                      fields: list[str] | None = None, **params: str) -> History:
        """The retained events of a topic with history, oldest first; retried after ``RATE_LIMITED``.

        ``topic`` is a concrete channel, or a pattern whose ``{name}`` parts
        ``params`` fill (``history("feed.{room}", room="lobby")``). With
        ``since`` only the events after it; ``limit`` keeps the first
        ``limit`` after ``since``, else the last ``limit``. Each `Event`
        carries its ``offset`` and ``epoch``; the `History` says where the
        channel stands and, with ``since``, whether it ``recovered`` them all.
        """
        channel = _channel(topic, params)
        data: dict[str, Any] = {"topic": channel}
        if since is not None:
            data["since"] = {"epoch": since.epoch, "offset": since.offset}
        if limit is not None:
            data["limit"] = limit
        if fields is not None:
            data["fields"] = list(fields)
        page = await self._request_retrying({"action": "__history__", "data": data})
        events = [Event(channel, event.get("data"), event["offset"], page["epoch"]) for event in page["events"]]
        return History(events, page["epoch"], page["offset"], page.get("recovered"))

    def _move_to(self, url: str) -> None:
        """Connect to ``url`` from now on."""
        raise TypeError(f"{type(self).__name__} cannot reconnect to another URL")

    async def publish(self, topic: str, payload: Any, *, idempotency_key: str | None = None) -> Any:
        """Publish to a topic that allows client publishing; the reply's data, or `RemoteError`.

        The publish carries ``idempotency_key`` (a fresh random one by
        default). When the connection ends before the reply, it waits (up to
        ``timeout``) for the next connection, made by `reconnect`, and sends
        the publish again with the same key, at most ``retries`` times: the
        server delivers it once, and answers a repeat with ``duplicate: true``.
        Error frames are never retried.
        """
        data = {"topic": topic, "payload": payload, "idempotency_key": idempotency_key or new_key()}
        attempt = 0
        while True:
            next_link = self._next_link
            try:
                return await self.request({"action": "__publish__", "data": data})
            except ConnectionClosed:
                if attempt >= self.retries or self._ended_for_good:
                    raise
                try:
                    await asyncio.wait_for(next_link.wait(), self.timeout)
                except TimeoutError:
                    raise ConnectionClosed(self.close_code, self.close_reason) from None
                attempt += 1
                logger.debug("publish to %s sent again after a reconnect (attempt %d)", topic, attempt)

    async def schema(self) -> dict:
        """The gateway's ``__schema__`` document; retried after ``RATE_LIMITED``."""
        return await self._request_retrying({"action": "__schema__"})

    async def ping(self) -> str:
        """Round-trip a ``__ping__``; returns "pong"; retried after ``RATE_LIMITED``."""
        return await self._request_retrying({"action": "__ping__"})

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (TimeoutError after)."""
        event = await asyncio.wait_for(self._events.get(), timeout or self.timeout)
        if event is None:
            self._events.put_nowait(None)
            raise ConnectionClosed(self.close_code, self.close_reason)
        return event

    async def events(self) -> AsyncIterator[Event]:
        """Events as they arrive, until the connection closes."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)
                return
            yield event


class Client(BaseClient):
    """A websocket client speaking ``drizzle.v1``; use it with ``async with``.

    ``timeout`` bounds the wait for each reply, in seconds. ``retries`` is how many
    times subscribe, unsubscribe, ping and schema are sent again after a transient
    refusal (0 turns retries off); a refusal asking to wait more than
    ``max_retry_delay`` seconds is final. Every attempt is bounded (``timeout`` for its
    reply, ``max_retry_delay`` before it is sent again) and there are at most
    ``retries + 1`` of them, so nothing waits forever. Retries go single file, one per
    ``retry_after``, so concurrent ones do not compete for the same slot; a retry
    waiting for its turn ends with `ConnectionClosed` as soon as the connection closes.

    ``token`` is sent with ``__auth__`` after every connect; ``get_token``
    (plain or async) is asked for a fresh one each time instead, and again
    ``refresh_ahead`` seconds before each expiry the gateway announces
    (halfway, for shorter-lived tokens). ``headers`` go with the handshake
    (``Authorization``, cookies).

    ``auto_reconnect=True`` reconnects after a dropped connection, on its
    own, waiting `backoff_delay` (at most ``max_reconnect_delay`` seconds)
    between attempts (`drizzle_gateway.client_reconnect`).

    A websocket ping goes out every ``ping_interval`` seconds (None: never);
    when nothing comes back within ``ping_timeout``, the link is cut and
    counts as dropped (`drizzle_gateway.client_heartbeat`): a server that
    stops answering, or a link that died silently, is left within
    ``ping_interval + ping_timeout`` seconds (reconnected with ``auto_reconnect``).

    A ``wss://`` URL speaks TLS, checking the server's certificate against
    the system's authorities, or as ``ssl`` (an `ssl.SSLContext`) says: e.g.
    ``ssl.create_default_context(cafile="ca.pem")`` for a private authority.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        retries: int = 10,
        max_retry_delay: float = 10.0,
        token: str | None = None,
        get_token: GetToken | None = None,
        refresh_ahead: float = 30.0,
        ssl: SSLContext | None = None,
        auto_reconnect: bool = False,
        max_reconnect_delay: float = 30.0,
        ping_interval: float | None = 15.0,
        ping_timeout: float = 10.0,
    ) -> None:
        super().__init__(timeout=timeout, retries=retries, max_retry_delay=max_retry_delay, token=token,
                         get_token=get_token, refresh_ahead=refresh_ahead, auto_reconnect=auto_reconnect,
                         max_reconnect_delay=max_reconnect_delay)
        self.url = url
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.headers = headers or {}
        self.ssl = ssl
        self._ws: WebSocketClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._watch: PingWatch | None = None
        self._heard = 0  # frames and pongs read on this link (the heartbeat's evidence)
        self._ping_missed = False

    async def connect(self) -> Client:
        """Open the websocket, and authenticate with the client's token if it has one."""
        request = HTTPRequest(self.url, headers=self.headers, ssl_options=self.ssl, connect_timeout=self.timeout,
                              request_timeout=self.timeout)
        connecting = asyncio.ensure_future(websocket_connect(request, subprotocols=[SUBPROTOCOL]))
        try:
            ws = self._ws = await asyncio.shield(connecting)
        except asyncio.CancelledError:  # a handshake still under way would end in a link nobody reads: close it
            connecting.add_done_callback(_close_late)
            raise
        self._started()
        self._heard, self._ping_missed = 0, False
        if self.ping_interval:
            ws.on_pong = self._pong  # type: ignore[method-assign]  # this connection's pongs, counted
            self._watch = PingWatch(self.ping_interval, self.ping_timeout, ws.ping, lambda: self._heard,
                                    lambda: self._ping_lost(ws))
            self._watch.start()
        self._reader = asyncio.ensure_future(self._read())
        await self._sign_in()
        return self

    def _pong(self, data: bytes) -> None:
        self._heard += 1

    def _ping_lost(self, ws: WebSocketClientConnection) -> None:
        """No answer to a ping: cut the socket now (a dead peer would never answer a close frame)."""
        if ws is self._ws and ws.protocol is not None and ws.protocol.stream is not None:
            self._ping_missed = True
            ws.protocol.stream.close()

    async def __aenter__(self) -> Client:
        return await self.connect()

    def _move_to(self, url: str) -> None:
        self.url = url

    async def close(self) -> None:
        """Close the websocket and stop reading; returns within ``timeout`` seconds whatever the server does.

        Publishes waiting for a reply fail at once, not sent again; automatic reconnecting stops.
        """
        self._ended_for_good = True
        self._stop_relinking()
        await self._close_link()

    async def _close_link(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        if self._ws is not None:
            self._ws.close()
        reader = self._reader
        if reader is not None and not reader.done():
            # Not wait_for: cancelling this wait must not cancel the reader, which ends the link (`_ended_with`).
            done, _ = await asyncio.wait({reader}, timeout=self.timeout)
            if not done:
                reader.cancel()
                if self._gone is not None and not self._gone.done():
                    self._ended_with(None, "closed by the client; the server did not answer")

    async def _send(self, text: str) -> None:
        assert self._ws is not None
        try:
            await self._ws.write_message(text)
        except WebSocketClosedError:  # closed before the reader saw it
            raise ConnectionClosed(self._ws.close_code, self._ws.close_reason) from None

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            text = await ws.read_message()
            if text is None:
                break
            self._heard += 1
            self._receive(decode(text))
        if self._watch is not None:
            self._watch.stop()
        if self._ping_missed:  # cut by the heartbeat: dropped, whatever the socket says
            self._ended_with(None, "ping timed out")
        else:
            self._ended_with(ws.close_code, ws.close_reason)


def _close_late(connecting: asyncio.Future[WebSocketClientConnection]) -> None:
    """Close a connection whose ``connect`` was cancelled before its handshake ended."""
    if not connecting.cancelled() and connecting.exception() is None:
        connecting.result().close()


def _refused(error: BaseException) -> bool:
    """Whether reconnecting stops on ``error``: the token or the client was refused (anything else: try again)."""
    return isinstance(error, RemoteError) and error.code in ("UNAUTHENTICATED", "FORBIDDEN")


def _channel(topic: str, params: dict[str, str]) -> str:
    """``topic`` with its ``{name}`` parts filled from ``params`` (none: as it is)."""
    if not params:
        return topic
    try:
        return topic.format_map(params)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"cannot fill {topic!r} from {sorted(params)}: {exc}") from None


def _drain(queue: asyncio.Queue) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
