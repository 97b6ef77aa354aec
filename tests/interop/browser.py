"""Headless Chromium for the interop tests (Debian's /usr/bin/chromium driven by Playwright):
one launch configuration and the hls.js playback/latency probe the LL-HLS tests share."""

from __future__ import annotations

import contextlib
import time

CHROMIUM = "/usr/bin/chromium"
# no sandbox (containers), no GPU, and none of Chromium's own background network traffic
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"  # <video> may play without a click


@contextlib.contextmanager
def chromium_page(*extra_args: str):
    """Yields a new Playwright page in a headless Chromium launched with ``CHROMIUM_ARGS`` plus
    ``extra_args``; the browser is closed when the block ends, however it ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def playback_latency(page, advance: float, advance_timeout_ms: int,
                     sample_seconds: float) -> tuple[dict, list]:
    """On a player page (``#v`` video, ``window.__stats``): wait until playback passes 1 s, then
    until it advances ``advance`` seconds more (a deadline, not a fixed window: a loaded machine
    may stall Chromium itself for a moment), then sample ``__stats.pdtLatency`` every 0.5 s for
    ``sample_seconds``. Returns (``window.__stats`` at the end, the samples, None included).
    Raises Playwright's TimeoutError when playback does not get that far in time."""
    page.wait_for_function("document.getElementById('v').currentTime > 1", timeout=20_000)
    t1 = page.evaluate("document.getElementById('v').currentTime")
    page.wait_for_function(f"document.getElementById('v').currentTime > {t1 + advance}",
                           timeout=advance_timeout_ms)
    samples = []
    deadline = time.monotonic() + sample_seconds
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        samples.append(page.evaluate("window.__stats.pdtLatency"))
    return page.evaluate("window.__stats"), samples
