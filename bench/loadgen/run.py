"""Run N publishers and M players against one RTMP server and collect what they saw.

Timeline of ``run_load``: publishers connect and stream (``warmup`` seconds, at least one GoP so
a GoP cache holds a keyframe); players connect in small batches (join time = from just before
the TCP connect to the first keyframe video message); once every player joined (or
``join_deadline`` passed) the measurement window opens: the caller's ``on_window`` hooks read the
server's CPU, we count media payload bytes delivered to players and sent by publishers, and
record send->receive latency. Then everyone disconnects.

Player ``i`` plays publisher ``i % publishers``. ``probe_players`` > 0 with ``players`` == 0 is
the ingest case: a few players (not counted in delivered bytes) only to check exactness.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from bench.loadgen.clients import Player, Publisher
from bench.loadgen.media import Media

CONNECT_TIMEOUT = 10.0  # s for TCP + handshake + connect + publish/play
PLAYER_BATCH = 10  # players connected at once ...
PLAYER_BATCH_INTERVAL = 0.02  # ... every this many seconds (200 players in 0.4 s)


@dataclass
class LoadSpec:
    host: str
    port: int
    publishers: int = 1
    players: int = 1
    probe_players: int = 0
    window: float = 15.0
    warmup: float = 1.5
    join_deadline: float = 5.0
    app: str = "live"


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


@dataclass
class LoadResult:
    spec: dict
    publishers_ok: int = 0
    players_ok: int = 0  # connected and joined
    players_exact: int = 0
    players_checked: int = 0
    delivered_bytes: int = 0  # media payload bytes received by counted players in the window
    ingest_bytes: int = 0  # media payload bytes sent by publishers in the window
    window_s: float = 0.0
    join_ms: list[float] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    missing: int = 0
    gaps: int = 0
    dups: int = 0
    foreign: int = 0
    frames_checked: int = 0
    audio_gaps: int = 0
    audio_back: int = 0
    publisher_max_lag_ms: float = 0.0
    loadgen_cpu: float = 0.0  # fraction of one core the load generator used in the window
    errors: list[str] = field(default_factory=list)

    @property
    def join_p50(self) -> float | None:
        return _pct(self.join_ms, 50)

    @property
    def join_p95(self) -> float | None:
        return _pct(self.join_ms, 95)

    @property
    def exact_pct(self) -> float | None:
        return 100.0 * self.players_exact / self.players_checked if self.players_checked else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(join_p50_ms=self.join_p50, join_p95_ms=self.join_p95, exact_pct=self.exact_pct)
        del d["join_ms"]
        return d


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _open(cls, args, host: str, port: int):
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(loop.create_connection(lambda: cls(*args), host, port),
                                      CONNECT_TIMEOUT)
    return proto


async def _start_publisher(i: int, media: Media, spec: LoadSpec, tc: str,
                           cls=Publisher) -> Publisher:
    p = await _open(cls, (i, media), spec.host, spec.port)
    try:
        await asyncio.wait_for(p.publish(spec.app, tc, f"s{i}"), CONNECT_TIMEOUT)
    except BaseException:
        p.close()
        raise
    return p


async def _start_player(i: int, spec: LoadSpec, tc: str, players: list, cls=Player) -> None:
    pub = i % spec.publishers
    t = time.monotonic()
    p = await _open(cls, (pub,), spec.host, spec.port)
    p.t_connect = t
    players.append(p)
    await asyncio.wait_for(p.play(spec.app, tc, f"s{pub}"), CONNECT_TIMEOUT)


async def run_load(spec: LoadSpec, media: Media,
                   on_window: tuple[Callable[[], None], Callable[[], None]] | None = None,
                   sample: Callable[[], None] | None = None, *, publisher_cls=Publisher,
                   player_cls=Player, scheme: str = "rtmp") -> LoadResult:
    """Run one load and return its result. ``on_window`` = (start hook, end hook); ``sample``
    is called every 0.25 s while the load runs (RSS sampling). ``publisher_cls``/``player_cls``
    and ``scheme`` swap in other protocols' clients (bench/loadgen/rtsp.py)."""
    res = LoadResult(spec=asdict(spec))
    tc = f"{scheme}://{spec.host}:{spec.port}/{spec.app}"
    pubs: list[Publisher] = []
    counted: list[Player] = []
    probes: list[Player] = []
    tasks: list[asyncio.Task] = []
    sampler = None

    async def _sampler():
        while True:
            sample()
            await asyncio.sleep(0.25)

    if sample is not None:
        sampler = asyncio.create_task(_sampler())
    try:
        started = await asyncio.gather(*(_start_publisher(i, media, spec, tc, publisher_cls)
                                         for i in range(spec.publishers)), return_exceptions=True)
        for s in started:
            if isinstance(s, BaseException):
                res.errors.append(f"publisher: {s!r}")
            else:
                pubs.append(s)
        res.publishers_ok = len(pubs)
        if not pubs:
            return res
        tasks = [asyncio.create_task(p.stream()) for p in pubs]
        await asyncio.sleep(spec.warmup)

        for group, n in ((counted, spec.players), (probes, spec.probe_players)):
            for b in range(0, n, PLAYER_BATCH):
                rs = await asyncio.gather(*(_start_player(i, spec, tc, group, player_cls)
                                            for i in range(b, min(n, b + PLAYER_BATCH))),
                                          return_exceptions=True)
                res.errors += [f"player: {r!r}" for r in rs if isinstance(r, BaseException)]
                await asyncio.sleep(PLAYER_BATCH_INTERVAL)
        everyone = counted + probes
        deadline = time.monotonic() + spec.join_deadline
        while time.monotonic() < deadline and any(p.t_first_key is None and p.error is None
                                                  for p in everyone):
            await asyncio.sleep(0.02)
        res.join_ms = [(p.t_first_key - p.t_connect) * 1000 for p in everyone if p.t_first_key]

        # ---- measurement window
        for p in everyone:
            p.latencies = []
        b_play = sum(p.media_bytes for p in counted)
        b_pub = sum(p.media_bytes_sent for p in pubs)
        for p in pubs:
            p.max_lag = 0.0
        c0, t0 = _cpu(), time.monotonic()
        if on_window:
            on_window[0]()
        await asyncio.sleep(spec.window)
        if on_window:
            on_window[1]()
        res.window_s = time.monotonic() - t0
        res.loadgen_cpu = (_cpu() - c0) / res.window_s
        res.delivered_bytes = sum(p.media_bytes for p in counted) - b_play
        res.ingest_bytes = sum(p.media_bytes_sent for p in pubs) - b_pub
        res.publisher_max_lag_ms = max(p.max_lag for p in pubs) * 1000

        lat = [x for p in everyone for x in (p.latencies or ())]
        if lat:
            res.latency_p50_ms = _pct(lat, 50) / 1000
            res.latency_p95_ms = _pct(lat, 95) / 1000
        res.players_ok = sum(1 for p in everyone if p.t_first_key and p.error is None)
        res.players_checked = spec.players + spec.probe_players
        res.players_exact = sum(1 for p in everyone if p.exact)
        for p in everyone:
            res.missing += p.missing
            res.gaps += p.gaps
            res.dups += p.dups
            res.foreign += p.foreign
            res.frames_checked += p.frames
            res.audio_gaps += p.audio_gaps
            res.audio_back += p.audio_back
            if p.error is not None:
                res.errors.append(f"player s{p.expect_pub}: {p.error!r}")
            elif p.t_first_key is None:
                res.errors.append(f"player s{p.expect_pub}: no keyframe within the deadline")
        res.errors += [f"publisher {p.pub_id}: {p.error!r}" for p in pubs if p.error is not None]
        return res
    finally:
        for p in pubs:
            p.stop()
        for p in counted + probes + pubs:
            p.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if sampler is not None:
            sampler.cancel()
