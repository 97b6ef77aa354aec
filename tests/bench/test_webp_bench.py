"""The WebP benchmark's raw WebSocket reader: counts every message and keeps its tail whatever
the split of the byte stream; a tiny fan-out run goes end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.webp_bench import ROOT, TAIL, WsReader
from rtmpgop.io.ws_server import frame_header


class _T:
    def write(self, b):
        pass

    def close(self):
        pass


def wire(messages):
    out = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    for op, m in messages:
        out += frame_header(op, len(m)) + m
    return out


MESSAGES = [(2, bytes([i % 251]) * n + bytes(range(20))) for i, n in enumerate([0, 1, 100, 125, 126, 70000, 5])]
MESSAGES.insert(2, (1, b'{"type":"info"}'))


def feed(data, cuts):
    loop = asyncio.new_event_loop()
    try:
        log = []
        r = WsReader("h", 1, "/ws/x", log, loop.create_future())
        r.connection_made(_T())
        r.recording = True
        pos = 0
        for cut in sorted(set(cuts)) + [len(data)]:
            while pos < cut:
                buf = r.get_buffer(-1)
                n = min(len(buf), cut - pos)
                buf[:n] = data[pos:pos + n]
                r.buffer_updated(n)
                pos += n
        return r, log
    finally:
        loop.close()


def check(r, log):
    binary = [m for op, m in MESSAGES if op == 2]
    assert r.messages == len(binary)
    assert [t for t, _ in log] == [m[-TAIL:] for m in binary]


def test_whole_stream():
    check(*feed(wire(MESSAGES), []))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(wire(MESSAGES))), max_size=12))
def test_any_split(cuts):
    check(*feed(wire(MESSAGES), cuts))


@pytest.mark.timeout(120)
def test_tiny_fanout_run(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "webp_bench.py"), "fanout", "--clients", "5",
                          "--seconds", "2", "--size", "160x96",
                          "--out", str(tmp_path / "f.json")], capture_output=True, timeout=110, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode()[-800:]
    data = json.loads((tmp_path / "f.json").read_text())
    (row,) = data["fanout"]
    assert row["clients"] == 5 and row["delivered_pct_min"] > 90
    assert row["server"]["frames_fanned_out"] > 30 and row["latency_samples"] > 100
