"""The stress suite's delivery checker: fed every frame a subscriber sends and reads, it keeps the score.

Per subscriber and channel it keeps the position (epoch, offset of the last
event delivered) and counts events delivered, offsets lost with an
announcement, duplicates, offsets skipped silently, and events that came
after an acknowledged ``__unsubscribe__``. A loss is announced by:

1. ``recovered: false`` in a ``__subscribe__`` reply: the reply's epoch and
   offset become the position;
2. an event whose ``epoch`` differs from the position's (a new epoch): its
   offset becomes the position;
3. a gap notice, ``{"topic", "epoch", "gap": {"from": A, "to": B}}``
   (inclusive, no ``data``): delivery goes on at B + 1.

Anything else that jumps ahead is a silent skip; anything at or below the
position is a duplicate.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Score:
    """What one subscriber saw on one channel."""

    delivered: int = 0
    lost: int = 0  # offsets announced lost (recovered: false, a new epoch, a gap notice)
    duplicated: int = 0
    skipped: int = 0  # offsets that never came and were never announced
    after_unsubscribe: int = 0  # events after an acknowledged __unsubscribe__
    epochs: int = 0  # announced epoch changes
    anomalies: list[str] = field(default_factory=list)  # the first few violations, for the failure message

    def note(self, text: str) -> None:
        if len(self.anomalies) < 10:
            self.anomalies.append(text)

    @property
    def clean(self) -> bool:
        """No duplicate, no silent skip, nothing after an unsubscribe."""
        return not (self.duplicated or self.skipped or self.after_unsubscribe)


@dataclass
class _Track:
    """One subscriber's state on one channel."""

    score: Score = field(default_factory=Score)
    epoch: str | None = None
    offset: int | None = None
    fresh: bool = False  # subscribing without `since`: events wait for the reply's position
    early: list[dict[str, Any]] = field(default_factory=list)
    unsubscribed: bool = False


class DeliveryChecker:
    """Scores every subscriber's events per channel against the history-and-recovery rules (see module doc)."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[Hashable, str], _Track] = {}

    def _track(self, subscriber: Hashable, channel: str) -> _Track:
        return self._tracks.setdefault((subscriber, channel), _Track())

    def score(self, subscriber: Hashable, channel: str) -> Score:
        """The score of ``subscriber`` on ``channel``."""
        return self._track(subscriber, channel).score

    def scores(self) -> dict[tuple[Hashable, str], Score]:
        """Every (subscriber, channel) score."""
        return {key: track.score for key, track in self._tracks.items()}

    def position(self, subscriber: Hashable, channel: str) -> tuple[str | None, int | None]:
        """The (epoch, offset) of the last event ``subscriber`` got on ``channel``."""
        track = self._track(subscriber, channel)
        return track.epoch, track.offset

    # -- what the subscriber sends ---------------------------------------------

    def subscribing(self, subscriber: Hashable, channel: str, since: dict[str, Any] | None) -> None:
        """A ``__subscribe__`` was sent (``since`` as in the frame): the channel is live again."""
        track = self._track(subscriber, channel)
        track.unsubscribed = False
        if since is None:
            track.fresh = True
        else:
            track.fresh = False
            track.epoch, track.offset = since["epoch"], since["offset"]

    # -- what the subscriber reads ---------------------------------------------

    def subscribed(self, subscriber: Hashable, channel: str, reply: dict[str, Any]) -> None:
        """The ``__subscribe__`` reply's data (``epoch``, ``offset``, ``recovered`` on channels with history)."""
        track = self._track(subscriber, channel)
        if "epoch" not in reply:  # the store was unreachable: the first event will carry the epoch
            if track.fresh:
                track.epoch = track.offset = None
                track.fresh = False
                self._flush_early(subscriber, channel, track)
            return
        if track.fresh:
            track.epoch, track.offset, track.fresh = reply["epoch"], reply["offset"], False
            self._flush_early(subscriber, channel, track)
        elif reply.get("recovered") is False:
            if track.epoch == reply["epoch"] and track.offset is not None:
                track.score.lost += max(0, reply["offset"] - track.offset)
                track.offset = max(track.offset, reply["offset"])
            else:
                track.score.epochs += 1
                track.score.lost += reply["offset"]
                track.epoch, track.offset = reply["epoch"], reply["offset"]

    def unsubscribed(self, subscriber: Hashable, channel: str) -> None:
        """The ``__unsubscribe__`` reply arrived: from now on nothing may come on ``channel``."""
        track = self._track(subscriber, channel)
        track.unsubscribed = True
        track.fresh = False
        track.early.clear()

    def frame(self, subscriber: Hashable, frame: dict[str, Any]) -> None:
        """An event frame (or gap notice) read by ``subscriber``."""
        channel = frame["topic"]
        track = self._track(subscriber, channel)
        if track.unsubscribed:
            track.score.after_unsubscribe += 1
            track.score.note(f"{channel}: event {frame.get('offset')} after the unsubscribe's reply")
            return
        if track.fresh:
            track.early.append(frame)
            return
        self._apply(channel, track, frame)

    def _flush_early(self, subscriber: Hashable, channel: str, track: _Track) -> None:
        early, track.early = track.early, []
        for frame in early:
            self._apply(channel, track, frame)

    def _apply(self, channel: str, track: _Track, frame: dict[str, Any]) -> None:
        score = track.score
        epoch = frame.get("epoch")
        gap = frame.get("gap")
        if gap is not None:
            first, last = gap["from"], gap["to"]
            if epoch is not None and epoch != track.epoch:
                score.epochs += 1
                score.lost += last
                track.epoch, track.offset = epoch, last
                return
            position = track.offset or 0
            if first > position + 1:
                score.skipped += first - position - 1
                score.note(f"{channel}: gap notice from {first} after {position}")
            score.lost += max(0, last - max(first - 1, position))
            track.offset = max(last, position)
            return
        offset = frame.get("offset")
        if offset is None:  # a channel without history: nothing to check but the unsubscribe rule
            score.delivered += 1
            return
        if epoch is not None and epoch != track.epoch:
            if track.epoch is not None:
                score.epochs += 1
            score.lost += offset - 1
            track.epoch, track.offset = epoch, offset
            score.delivered += 1
            return
        if track.offset is None:  # no position known (subscribed while the store was down): take this one
            track.offset = offset
            score.delivered += 1
            return
        if offset <= track.offset:
            score.duplicated += 1
            score.note(f"{channel}: offset {offset} again (at {track.offset})")
            return
        if offset > track.offset + 1:
            score.skipped += offset - track.offset - 1
            score.note(f"{channel}: offsets {track.offset + 1}-{offset - 1} skipped silently")
        track.offset = offset
        score.delivered += 1

    def finish(self, subscriber: Hashable, channel: str, epoch: str, offset: int) -> None:
        """The channel ended at (``epoch``, ``offset``): what ``subscriber`` never got counts as skipped."""
        track = self._track(subscriber, channel)
        if track.unsubscribed:
            return
        if track.epoch != epoch:
            track.score.skipped += offset
            track.score.note(f"{channel}: ended in epoch {track.epoch} at {track.offset}, not {epoch} at {offset}")
        elif (track.offset or 0) < offset:
            track.score.skipped += offset - (track.offset or 0)
            track.score.note(f"{channel}: ended at {track.offset}, the channel at {offset}")
