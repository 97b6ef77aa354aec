"""GoP: a keyframe-initiated run of access units, the unit subscribers start on and skip by.

A GoP opens at a video keyframe (or, on audio-only channels, every ``AUDIO_GOP_SECONDS`` of
audio) and holds every item of the channel, in arrival order, up to the next GoP: access units
of all tracks, plus in-line ``TrackSet`` changes and the ``Unpublished`` marker. GoPs are linked
(``next``) so a subscriber walks from one to the next without asking the channel, even across
a change of publisher. See DESIGN.md section 1.
"""

from __future__ import annotations

from typing import Any

from rtmpgop.media import AccessUnit, Item, TrackSet


class GoP:
    """One group of pictures. Mutated only by its channel; read by subscriptions.

    ``cache`` is free for subscribers to keep data derived from this GoP's items and shared by
    all of them (e.g. RTMP messages serialized once per chunk size); it dies with the GoP.
    """

    __slots__ = (
        "seq", "head", "items", "nbytes", "nframes", "start_bytes", "start_frames",
        "random_access", "start_dts", "next", "evicted", "closed", "cache",
    )

    def __init__(self, seq: int, head: TrackSet, start_bytes: int, start_frames: int,
                 random_access: bool, start_dts: int) -> None:
        self.seq = seq
        self.head = head  # the channel's tracks when this GoP opened
        self.items: list[Item] = []
        self.nbytes = 0  # payload bytes of the access units in items
        self.nframes = 0  # access units in items
        self.start_bytes = start_bytes  # channel byte counter when this GoP opened
        self.start_frames = start_frames  # channel frame counter when this GoP opened
        self.random_access = random_access  # starts with a keyframe a decoder can start on
        self.start_dts = start_dts  # dts of the first access unit, in its track's clock
        self.next: GoP | None = None
        self.evicted = False  # dropped from the channel's ring: readers must skip ahead
        self.closed = False  # no more items will be appended
        self.cache: dict[Any, Any] = {}

    def append(self, item: Item) -> None:
        self.items.append(item)
        if type(item) is AccessUnit:
            self.nbytes += len(item.payload)
            self.nframes += 1

    def __repr__(self) -> str:
        return (f"GoP(seq={self.seq}, items={len(self.items)}, bytes={self.nbytes}, "
                f"ra={self.random_access}, closed={self.closed})")
