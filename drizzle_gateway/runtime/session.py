"""One client's session: who it is, what it listens to, what it may still send, what it runs.

A `Session` knows nothing of Tornado: it takes text frames (`Session.receive`)
and hands its reply, error and event frames to its `Peer`, the websocket
`Connection` in production, an in-process one in `drizzle_gateway.testing`.
What it shares with the other sessions (fan-out, deadlines, limits, the
registry's lookups) it finds on the gateway's `Hub`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..wire.dialect import CloseCode
from ..wire.errors import ActionError, ErrorCode
from ..wire.history import Position
from . import dispatch
from .auth import Credentials, presents_credentials
from .fanout import Joined, View
from .identity import Identity
from .limits import TokenBucket
from .pacing import NEVER, Pacer
from .presence import Attendance
from .streams import Streams

if TYPE_CHECKING:
    from ..wire.dialect import Dialect, Request
    from ..wire.frame import Frame
    from .hub import Hub
    from .peer import Peer

logger = logging.getLogger("drizzle_gateway")

_NO_CHANNELS: frozenset[str] = frozenset()

OTHER_USER = "the token names another user; a refresh must be for the user this connection authenticated as"
"""The text of a refresh (``__auth__`` on an authenticated connection) whose token names someone else."""


class Session:
    """What one connection has: its user, subscriptions, rate bucket and running requests.

    Each request that waits runs as its own task, so a slow action never
    holds back the replies of others. With ``limits.max_in_flight``
    requests running, `receive` returns a future and the peer reads
    nothing more until it resolves: pipelined requests wait (backpressure),
    they are never refused. So it does while the session is paused after a
    costly request (``limits.cpu_share``, `pacing.Pacer`). Subscriptions
    last as long as the session.

    An `Identity` that expires arms one loop timer for the session (moved by
    each refresh, cancelled when the session ends): at its ``expires_at``
    the connection is closed with `CloseCode.TOKEN_EXPIRED`.
    """

    __slots__ = ("hub", "peer", "protocol", "user", "identity", "refusal", "started", "ended", "_channels", "_streams",
                 "_bucket", "_pacer", "_pause", "_tasks", "_auth_deadline", "_expiry", "_authenticating", "_slot_free",
                 "_held_since", "_released_at", "_turns", "_in_flight", "_owner")

    def __init__(self, hub: Hub, peer: Peer, protocol: Dialect | None = None) -> None:
        self.hub = hub
        self.peer = peer
        self.protocol = protocol or hub.dialect
        self.user: Any = None
        self.identity: Identity | None = None
        self.refusal: str | None = None  # while anonymous: what the last refused attempt was told
        self.started = False
        self._channels: set[str] | None = None  # made on the first subscription, as the tables below
        self.ended = False
        self._streams: Streams | None = None  # made on first use, as the pacer and the lock: idle sessions stay small
        limits = hub.limits
        self._bucket = TokenBucket(limits.rate, limits.burst_size) if limits.rate else None
        self._pacer: Pacer | None = None  # made on the first frame, when ``limits.cpu_share`` paces
        # While paused after a costly request: the pause's end, and the future the reader waits on.
        self._pause: tuple[asyncio.TimerHandle, asyncio.Future[None]] | None = None
        self._tasks: set[asyncio.Task[None]] | None = None
        self._auth_deadline: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._authenticating: asyncio.Lock | None = None  # one attempt at a time: refreshes apply in the order sent
        self._slot_free: asyncio.Future[None] | None = None
        self._in_flight = 0  # requests started and not yet answered
        self._owner = object()  # names this session's requests to the runner (`settle`), keeping nothing alive
        self._held_since: float | None = None  # reading held back since (loop time), or None
        self._released_at = NEVER
        self._turns: dict[str, asyncio.Future[None]] | None = None  # per channel: the last (un)subscribe to finish

    @property
    def tasks(self) -> frozenset[asyncio.Task[None]]:
        """The requests of this session still running."""
        return frozenset(self._tasks or ())

    @property
    def streams(self) -> Streams:
        """The streaming replies running now, by request_id (``__cancel__`` stops one)."""
        streams = self._streams
        if streams is None:
            streams = self._streams = Streams()
        return streams

    @property
    def pacer(self) -> Pacer | None:
        """What paces this session's CPU (made on first use); None when ``limits.cpu_share`` is None."""
        pacer = self._pacer
        if pacer is None and self.hub.limits.cpu_share is not None:
            pacer = self._pacer = Pacer(self.hub.limits.cpu_share, self.hub.pacing_clock)
        return pacer

    def shut_streams(self) -> None:
        """Stop every streaming reply (the gateway is closing)."""
        if self._streams is not None:
            self._streams.shut()

    @property
    def channels(self) -> AbstractSet[str]:
        """The channels this session listens to."""
        return self._channels if self._channels is not None else _NO_CHANNELS

    # -- life -------------------------------------------------------------------

    def start(self) -> None:
        """Join the hub's sessions; without a user, start the ``limits.auth_timeout`` clock.

        With an identity that expires (from the handshake), its expiry timer starts too.
        """
        self.hub.join(self)
        self.started = True
        self._arm_expiry()
        delay = self.hub.limits.auth_timeout
        if self.hub.authenticate is not None and self.user is None and delay is not None:
            self._auth_deadline = asyncio.get_running_loop().call_later(delay, self._auth_expired)

    def end(self) -> None:
        """The connection is gone: cancel its requests, leave its channels, leave the hub."""
        self.ended = True
        if self._slot_free is not None and not self._slot_free.done():
            self._slot_free.set_result(None)
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._pause is not None:
            self._pause[0].cancel()
            _resolve(self._pause[1])
            self._pause = None
        self.hub.leave(self)
        for task in self._tasks or ():
            task.cancel()
        for channel in self._channels or ():
            self.hub.fanout.discard(self, channel)
            self.hub.presence.forget(self, channel)
        self._channels = None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (after the frames already queued)."""
        self.peer.close(code, reason)

    # -- frames in --------------------------------------------------------------

    def receive(self, message: str | bytes, more: bool = False) -> asyncio.Future[None] | None:
        """Start the frame's request; while ``max_in_flight`` run, a future to wait for before reading on.

        The first request of a loop turn runs its first step now
        (`runner.Runner`): one that never waits, as most do, has its
        reply handed to the transport before this returns. Later requests of
        the same turn start together on the next turn. A request that waits
        goes on as its own task, under the ``limits.action_timeout`` deadline.
        A request read while the session is paused after a costly one
        (``limits.cpu_share``) starts when the pause ends; the future
        returned resolves then. ``more`` says that more frames were read
        with this one: its reply then waits to go out with theirs.
        """
        pacer = self._pacer or self.pacer
        began = pacer.clock() if pacer is not None else 0.0
        request = dispatch.intake(self, message)
        if isinstance(request, str):
            self.send_frame(request)
            if pacer is not None and pacer.costly(pacer.clock() - began):
                return self._start_later(None, pacer.resume_at)
            return None
        if pacer is None:
            return self._start(request, None, 0.0, not more)
        if pacer.paused():
            return self._start_later(request, pacer.resume_at)
        return self._start(request, pacer, pacer.clock() - began, not more)

    def _start(self, request: Request, pacer: Pacer | None, spent: float = 0.0,
               direct: bool = True) -> asyncio.Future[None] | None:
        """Start a request whose intake took ``spent`` seconds; a future to wait for while it runs or pauses."""
        self._in_flight += 1
        self.hub.starter.start(self._serve(request), self._waits, pacer, spent, direct, self._owner)
        limit = self.hub.limits.max_in_flight
        if limit is not None and self._in_flight >= limit:  # held first: the next frame meets a pause, if any
            loop = asyncio.get_running_loop()
            self._slot_free = loop.create_future()
            self._held_since = loop.time()
            return self._slot_free
        if pacer is not None and pacer.paused():  # its first step was costly
            return self._start_later(None, pacer.resume_at)
        return None

    def settle(self) -> bool:
        """A chunk of pipelined frames was read: run their requests now if this session alone keeps the loop busy.

        True when they ran (`Runner.settle`): their replies may go to the
        socket at once, and the socket be read on, with no loop turn between.
        """
        return self.hub.starter.settle(self._owner)

    def _start_later(self, request: Request | None, when: float) -> asyncio.Future[None]:
        """A future resolved once ``request`` (if any) started at loop time ``when`` and may be read past."""
        loop = asyncio.get_running_loop()
        resumed = loop.create_future()

        def resume() -> None:
            self._pause = None
            held = None if request is None or self.ended else self._start(request, self._pacer)
            if held is None:
                _resolve(resumed)
            else:
                held.add_done_callback(lambda _: _resolve(resumed))

        self._pause = (loop.call_at(when, resume), resumed)
        return resumed

    async def _serve(self, request: Request) -> None:
        try:
            if self.ended:  # closed before its turn came: nothing to answer
                return
            if self.send_frame(await dispatch.respond(self, request)):
                await self.drained()  # a peer that does not read its replies holds its in-flight slots
        finally:
            self._in_flight -= 1
            waiting = self._slot_free
            if waiting is not None:
                self._slot_free = None
                loop = waiting.get_loop()  # no running-loop lookup: a request closed after its loop stopped ends here
                if not waiting.done() and not loop.is_closed():
                    self._held_since, self._released_at = None, loop.time()
                    waiting.set_result(None)

    def _waits(self, task: asyncio.Task[None]) -> None:
        """A request waits, in ``task``: cancelled when the session ends, or by its deadline."""
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._request_done)
        self.hub.deadlines.watch(task)

    def _request_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        self.hub.deadlines.forget(task)

    def reading_held_since(self, when: float) -> bool:
        """Whether reading was held back (``max_in_flight``) at any time since loop time ``when``.

        Pongs wait unread behind held requests, so the heartbeat excuses such a peer.
        """
        return self._held_since is not None or self._released_at >= when

    def throttled(self) -> ActionError | None:
        """RATE_LIMITED if this frame is over the session's rate, else None (every frame counts)."""
        if self._bucket is None:
            return None
        wait = self._bucket.take()
        if not wait:
            return None
        return ActionError(ErrorCode.RATE_LIMITED, "too many requests; slow down", {"retry_after": round(wait, 3)})

    # -- frames out -------------------------------------------------------------

    def send_frame(self, frame: str | Frame) -> bool:
        """Queue one text frame for the peer; True when it is congested (await `drained`)."""
        return self.peer.send_frame(frame)

    async def drained(self) -> None:
        """Wait until the peer has read down to half of ``limits.send_queue_bytes`` (or is gone)."""
        await self.peer.drained()

    async def released(self) -> None:
        """Wait until the peer no longer holds publishers (for at most ``limits.publish_wait``)."""
        await self.peer.released()

    # -- authentication ---------------------------------------------------------

    async def authenticate(self, token: str | None = None) -> Identity:
        """Ask the gateway's ``authenticate`` hook who this is; UNAUTHENTICATED when refused.

        Without ``token`` the hook sees the handshake only. On success
        ``identity`` and ``user`` are set, the unauthenticated-close deadline
        is lifted and the expiry timer set to the identity's ``expires_at``.
        On a connection that has a user already this is a refresh: the new
        identity must name the same user (`Identity.same_user`), else
        FORBIDDEN. A refused refresh changes nothing: the connection keeps
        its identity until that expires. Attempts run one at a time, in the
        order they came, so the token sent last is the one that holds.
        """
        if self._authenticating is None:
            self._authenticating = asyncio.Lock()
        async with self._authenticating:
            return self._authenticated(await self._identify(token))

    async def _identify(self, token: str | None) -> Identity:
        credentials = Credentials(self.peer.request, token, self.peer.address)
        try:
            return await self.hub.identify(credentials)
        except ActionError as exc:
            # an anonymous handshake is no attempt: nothing was refused, the client is told to authenticate
            if self.identity is None and exc.code == ErrorCode.UNAUTHENTICATED and presents_credentials(credentials):
                self.refusal = exc.message
            raise

    def _authenticated(self, identity: Identity) -> Identity:
        if self.identity is not None and not self.identity.same_user(identity):
            raise ActionError(ErrorCode.FORBIDDEN, OTHER_USER)
        self.identity, self.user, self.refusal = identity, identity.user, None
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
            self._auth_deadline = None
        self._arm_expiry()
        return identity

    def _auth_expired(self) -> None:
        self._auth_deadline = None
        if self.user is None:
            self.close(CloseCode.UNAUTHENTICATED, "not authenticated in time")

    def _arm_expiry(self) -> None:
        """(Re)start the expiry timer for the identity's ``expires_at`` (once started, and if it expires)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        remaining = self.identity.remaining() if self.identity is not None else None
        if remaining is not None and self.started and not self.ended:
            self._expiry = asyncio.get_running_loop().call_later(max(0.0, remaining), self._identity_expired)

    def _identity_expired(self) -> None:
        self._expiry = None
        self.close(CloseCode.TOKEN_EXPIRED, "token expired")

    # -- subscriptions ----------------------------------------------------------

    @asynccontextmanager
    async def in_order(self, channel: str) -> AsyncIterator[None]:
        """Wait for this session's earlier subscribe/unsubscribe of ``channel`` to finish, then hold its turn.

        Entered before the request's first await, it makes a subscribe and an
        unsubscribe sent back to back take effect in the order they were sent.
        """
        if self._turns is None:
            self._turns = {}
        previous = self._turns.get(channel)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns[channel] = done
        try:
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            yield
        finally:
            if previous is None or previous.done():
                self._end_turn(channel, done)
            else:  # cancelled while waiting: the next in line still waits for the earlier one
                previous.add_done_callback(lambda _: self._end_turn(channel, done))

    def _end_turn(self, channel: str, done: asyncio.Future[None]) -> None:
        done.set_result(None)
        if self._turns is not None and self._turns.get(channel) is done:
            del self._turns[channel]

    async def subscribe(self, channel: str, fields: list[str] | tuple[str, ...] | None = None) -> str:
        """Listen to a concrete ``channel``; events flow once this returns."""
        await self.join(channel, fields)
        return channel

    async def join(self, channel: str, fields: list[str] | tuple[str, ...] | None = None,
                   since: Position | None = None, attendance: Attendance | None = None) -> Joined | None:
        """Listen to a concrete ``channel``; on a channel with history, say where the subscription began.

        With ``since`` (an earlier position of this client) the events
        missed since then are sent first; `Joined.recovered` says whether
        they could be. Returns None on channels without history. On a
        channel with presence, ``attendance`` says whether the subscription
        is a member and hears joins and leaves (it hears its own join too).
        """
        topic, _ = self.hub.registry.find_topic(channel)
        limit = self.hub.limits.max_subscriptions
        if limit is not None and channel not in self.channels and len(self.channels) >= limit:
            raise ActionError(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions on this connection",
                              {"limit": "max_subscriptions", "max": limit})
        view = View(self.protocol, topic.select(fields))
        fanout, presence = self.hub.fanout, self.hub.presence
        joined = None
        try:
            if topic.history is None:
                await fanout.add(self, channel, view)
            else:
                joined = await fanout.add_logged(self, channel, view, topic.history, since)
            if topic.presence is not None:
                await self._attend(channel, attendance or Attendance())
        except BaseException:  # refused, timed out or cancelled mid-join (e.g. a replay): not subscribed
            fanout.discard(self, channel)
            presence.forget(self, channel)
            self._leave(channel)
            raise
        if self.ended:  # closed while joining
            fanout.discard(self, channel)
            presence.forget(self, channel)
            self._leave(channel)
        else:
            # Subscribing again (other fields) swaps the view in place: the channel is never left, so no
            # event falls between the old view and the new one.
            fanout.keep_only(self, channel, view)
            if self._channels is None:
                self._channels = set()
            self._channels.add(channel)
        return joined

    async def _attend(self, channel: str, attendance: Attendance) -> None:
        """Hear the joins and leaves of ``channel`` (or not), then count as its member (or not)."""
        presence = self.hub.presence
        if attendance.watch:
            presence.watch(self, channel, attendance.selection)
        else:
            presence.unwatch(self, channel)
        if attendance.entry is None:
            presence.leave(self, channel)
        else:
            await presence.enter(self, channel, *attendance.entry)

    async def unsubscribe(self, channel: str) -> bool:
        """Stop listening to ``channel``; False if this session was not listening."""
        if channel not in self.channels:
            return False
        self._leave(channel)
        self.hub.fanout.discard(self, channel)
        self.hub.presence.forget(self, channel)
        return True

    def _leave(self, channel: str) -> None:
        if self._channels is not None:
            self._channels.discard(channel)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
