"""Hub: the registry of channels, one per stream path.

``publish`` claims a path (refusing a second publisher with ``PathBusy``); ``subscribe`` opens a
cursor on a path whether or not anybody publishes yet, so players can wait for a publisher.
A channel disappears when it has neither publisher nor subscribers.

Listeners (``on_publish``, ``on_unpublish``, ``on_subscribe``) let the app start per-channel
workers (the LL-HLS muxer when a publisher starts, an on-demand camera pull when a viewer comes).
They are called synchronously and must not block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rtmpgop.channels.channel import Channel
from rtmpgop.channels.subscription import (
    DEFAULT_MAX_BACKLOG_BYTES, DEFAULT_MAX_BACKLOG_GOPS, Subscription)
from rtmpgop.errors import PathBusy, ProtocolError
from rtmpgop.media import Statistics

log = logging.getLogger(__name__)

MAX_PATH_LENGTH = 256
"""Longest stream path accepted: room for deep app/stream names, short enough for logs and URLs."""

MAX_PATH_SEGMENTS = 8
"""Most '/'-separated parts in a path (``live/cam1`` has 2)."""

ChannelListener = Callable[[Channel], None]


class InvalidPath(ProtocolError):
    """A stream path that is empty, too long, or has characters outside the allowed set."""


_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~/")


def normalize_path(path: str) -> str:
    """``/live/cam1/`` -> ``live/cam1``. Raises ``InvalidPath``."""
    p = path.strip("/")
    if not p or len(p) > MAX_PATH_LENGTH:
        raise InvalidPath("stream path empty or too long", path=path[:80])
    if not set(p) <= _ALLOWED:
        raise InvalidPath("stream path has characters outside [A-Za-z0-9-_.~/]", path=path[:80])
    parts = p.split("/")
    if len(parts) > MAX_PATH_SEGMENTS or any(s in ("", ".", "..") for s in parts):
        raise InvalidPath("stream path has empty, '.' or '..' parts or too many parts", path=path[:80])
    return p


class Hub:
    """All channels of the server."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}
        self.on_publish: list[ChannelListener] = []
        self.on_unpublish: list[ChannelListener] = []
        self.on_subscribe: list[ChannelListener] = []
        self.publishes_refused = 0

    def get(self, path: str) -> Channel | None:
        """The channel at ``path`` (normalized), or None."""
        try:
            return self._channels.get(normalize_path(path))
        except InvalidPath:
            return None

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def _channel(self, path: str) -> Channel:
        p = normalize_path(path)
        ch = self._channels.get(p)
        if ch is None:
            ch = self._channels[p] = Channel(p, on_empty=self._drop)
        return ch

    def _drop(self, ch: Channel) -> None:
        if self._channels.get(ch.path) is ch:
            del self._channels[ch.path]

    def publish(self, path: str, owner: object) -> Channel:
        """Claim ``path`` for ``owner``. Raises ``PathBusy`` or ``InvalidPath``."""
        ch = self._channel(path)
        if ch.publisher is not None and ch.publisher is not owner:
            self.publishes_refused += 1
            raise PathBusy(ch.path)
        ch.begin_publish(owner)
        log.info("publish start %s", ch.path)
        self._notify(self.on_publish, ch)
        return ch

    def unpublish(self, ch: Channel, owner: object, reason: str = "") -> None:
        """End ``owner``'s publication of ``ch`` (no-op if it is not the publisher)."""
        # listeners first: the channel may drop itself when nobody is left
        if ch.publisher is owner:
            log.info("publish end %s%s", ch.path, f" ({reason})" if reason else "")
            self._notify(self.on_unpublish, ch)
            ch.unpublish(owner, reason)

    def subscribe(self, path: str, name: str = "", *,
                  max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
                  max_backlog_gops: int = DEFAULT_MAX_BACKLOG_GOPS,
                  passive: bool = False) -> Subscription:
        """A new cursor on ``path`` starting at the newest GoP head. Raises ``InvalidPath``.

        ``passive`` marks a background consumer (LL-HLS muxer) that is not a viewer.
        """
        ch = self._channel(path)
        sub = Subscription(ch, name, max_backlog_bytes, max_backlog_gops, passive)
        ch.subscriptions.add(sub)
        sub._start()
        if not passive:  # a viewer came (on-demand sources start on this)
            self._notify(self.on_subscribe, ch)
        return sub

    def _notify(self, listeners: list[ChannelListener], ch: Channel) -> None:
        for fn in listeners:
            try:
                fn(ch)
            except Exception:
                log.exception("hub listener %r failed for %s", fn, ch.path)

    def statistics(self) -> Statistics:
        chans = list(self._channels.values())
        return Statistics(
            frames_in=sum(c.frames_in for c in chans), bytes_in=sum(c.bytes_in for c in chans),
            extra=(("channels", len(chans)), ("live", sum(c.is_live for c in chans)),
                   ("subscribers", sum(len(c.subscriptions) for c in chans)),
                   ("publishes_refused", self.publishes_refused)),
        )
