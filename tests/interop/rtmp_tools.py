"""Helpers for the RTMP interop tests: ffmpeg/ffprobe runs with deadlines, waiting on the hub."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

FFMPEG = "/usr/bin/ffmpeg"
FFPROBE = "/usr/bin/ffprobe"


def wait_until(fn, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``fn()`` until truthy; return its value. Raises TimeoutError after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def channel_stat(server, path: str, key: str):
    def get():
        ch = server.hub.get(path)
        if ch is None:
            return None
        if key == "subscribers":
            return len(ch.subscriptions)
        if key == "frames_in":
            return ch.frames_in
        if key == "live":
            return ch.is_live
        raise KeyError(key)
    return server.call(get)


def publish(url: str, src: str, *, loop: bool = False, extra=()) -> subprocess.Popen:
    """ffmpeg -re publishes ``src`` (stream copy) to ``url``."""
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", src, "-c", "copy", *extra, "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def framemd5(args, timeout: float = 20.0) -> list[tuple[int, str]]:
    """(stream index, md5) per decoded frame of ``ffmpeg ARGS -f framemd5 -``."""
    out = subprocess.run([FFMPEG, "-nostdin", "-v", "error", *args, "-f", "framemd5", "-"],
                         capture_output=True, timeout=timeout, check=True).stdout.decode()
    rows = []
    for line in out.splitlines():
        if line and not line.startswith("#"):
            parts = [p.strip() for p in line.split(",")]
            rows.append((int(parts[0]), parts[-1]))
    return rows


def parse_framemd5(text: str) -> list[tuple[int, str]]:
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = [p.strip() for p in line.split(",")]
            rows.append((int(parts[0]), parts[-1]))
    return rows


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def stopping():
    """Yields ``keep(proc) -> proc``: every process kept is stopped (in the order kept) when the
    block ends, however it ends."""
    procs: list[subprocess.Popen] = []
    try:
        yield lambda proc: procs.append(proc) or proc
    finally:
        for proc in procs:
            stop(proc)


def publisher_then_output(pub: subprocess.Popen, player: subprocess.Popen,
                          timeout: float) -> tuple[bytes, bytes]:
    """Wait for publisher ``pub`` to end cleanly (asserts exit 0, with its stderr), then return
    the (stdout, stderr) of ``player``, which ends when the published stream does."""
    assert pub.wait(timeout) == 0, pub.stderr.read()
    return player.communicate(timeout=timeout)


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    """Read ``s`` until the server closes it (EOF or reset); True then. Raises
    ``TimeoutError`` (socket.timeout) if nothing arrives for ``timeout`` seconds. Closes ``s``."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    finally:
        s.close()
