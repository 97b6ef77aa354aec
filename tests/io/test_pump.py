"""PumpScheduler: woken connections pumped in one pass, at the next loop turn or after the
merged-write delay; a failing pump closes only its connection."""

import asyncio

import uvloop

from rtmpgop.io.pump import PumpScheduler


class Conn:
    def __init__(self, name, log, loop, fail=False):
        self.peer = name
        self.log, self.loop, self.fail = log, loop, fail
        self.closed = False

    def pump(self):
        self.log.append((self.peer, self.loop.time()))
        if self.fail:
            raise RuntimeError("bug")

    def close(self):
        self.closed = True


async def pumped(log, n):
    """Wait (5 s at most) until ``log`` holds ``n`` pumps."""
    async with asyncio.timeout(5):
        while len(log) < n:
            await asyncio.sleep(0.01)


def test_without_delay_every_due_connection_is_pumped_once_at_the_next_turn():
    async def main():
        loop = asyncio.get_running_loop()
        log = []
        s = PumpScheduler(0)
        a, b = Conn("a", log, loop), Conn("b", log, loop)
        s.schedule(a)
        s.schedule(b)
        s.schedule(a)  # woken again before its pass: still pumped once
        assert log == []  # not on the caller's (the publisher's) stack
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [n for n, _ in log] == ["a", "b"] and s.passes == 1
    uvloop.run(main())


def test_merge_delay_batches_wakeups_within_the_window():
    async def main():
        loop = asyncio.get_running_loop()
        log = []
        s = PumpScheduler(80)
        a, b = Conn("a", log, loop), Conn("b", log, loop)
        t0 = loop.time()
        s.schedule(a)
        await asyncio.sleep(0.02)
        s.schedule(b)  # 20 ms later: the same pass
        await pumped(log, 2)
        assert [n for n, _ in log] == ["a", "b"] and s.passes == 1
        assert log[0][1] - t0 >= 0.079  # a waited the whole window
        s.schedule(a)  # the next wake-up opens a new window
        await pumped(log, 3)
        assert s.passes == 2
    uvloop.run(main())


def test_failing_pump_closes_only_its_connection():
    async def main():
        loop = asyncio.get_running_loop()
        log = []
        s = PumpScheduler(0)
        bad, good = Conn("bad", log, loop, fail=True), Conn("good", log, loop)
        s.schedule(bad)
        s.schedule(good)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert bad.closed and not good.closed
        assert [n for n, _ in log] == ["bad", "good"]
    uvloop.run(main())
