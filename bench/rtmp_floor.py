"""The floor of RTMP ingest on rtmpgop's stack (CPython + uvloop + a ``BufferedProtocol``):
``rtmpgop`` with every publisher connection, once its publish is accepted, reading into one
scratch buffer and throwing the bytes away. No chunk parsing, no FLV, no hub.

    python bench/rtmp_floor.py [rtmpgop's command-line options]

``bench/rtmp_bench.py --servers floor`` runs it for the ingest scenarios: the CPU it takes per
Mbit is what the event loop, the socket reads and one Python callback per read cost before
rtmpgop does any work, so no RTMP server written on this stack can go below it.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from rtmpgop.io import rtmp_server  # noqa: E402

SCRATCH = memoryview(bytearray(256 * 1024))  # uvloop's own read size for plain protocols


class FloorProtocol(rtmp_server.RtmpServerProtocol):
    """The real protocol until its publish is accepted, then read-and-discard."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return SCRATCH if self.channel is not None else super().get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        if self.channel is None:
            super().buffer_updated(nbytes)
            return
        self._last_rx = self._loop.time()  # as the real one does: keeps the idle timer quiet
        self.reads += 1


if __name__ == "__main__":
    rtmp_server.RtmpServerProtocol = FloorProtocol  # what rtmp_server.start() instantiates
    from rtmpgop.cli import main
    raise SystemExit(main())
