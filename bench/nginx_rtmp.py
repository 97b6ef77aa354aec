"""nginx-rtmp as the benchmark's reference server.

Writes an nginx.conf into a temp dir (one process: ``master_process off``, ``daemon off``; the
Debian ``libnginx-mod-rtmp`` module; ``live on``; chunk_size 4096, as rtmpgop uses) and runs
``nginx -p DIR -c nginx.conf -e stderr`` on a free port. ``NginxRtmp`` is a context manager; its
``pid`` is the one process that does all the work, so /proc/PID/stat is the server's CPU.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
START_DEADLINE = 10.0  # s until the port accepts connections

CONF = """\
load_module {module};
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
        }}
    }}
}}
"""


def available() -> bool:
    """True when nginx and the RTMP module are installed."""
    return os.path.exists(NGINX) and os.path.exists(MODULE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    """Wait until 127.0.0.1:port accepts a connection. Raises RuntimeError on timeout or exit."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port} within {deadline} s")


class NginxRtmp:
    """``with NginxRtmp(cpu=0) as srv: srv.port, srv.pid``."""

    def __init__(self, port: int = 0, cpu: int | None = None) -> None:
        self.port = port or free_port()
        self.cpu = cpu
        self.dir = tempfile.mkdtemp(prefix="rtmpgop-bench-nginx-")
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> NginxRtmp:
        if not available():
            raise RuntimeError(f"nginx-rtmp not installed ({NGINX}, {MODULE})")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(module=MODULE, dir=self.dir, port=self.port))
        cpu = self.cpu

        def pin():
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-e", "stderr"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=pin)
        try:
            wait_port(self.port, self.proc, START_DEADLINE)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> str:
        """Stop nginx; returns what it wrote to stderr."""
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                _, e = self.proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, e = self.proc.communicate()
            err = (e or b"").decode(errors="replace")
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        return err

    def __enter__(self) -> NginxRtmp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
