"""Command line: ``rtmpgop [--config FILE] [--host H] [--rtmp-port N] ...``."""

from __future__ import annotations

import argparse
import logging
import sys

from rtmpgop import config as config_mod
from rtmpgop.errors import ConfigError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rtmpgop", description="Live video ingest and relay server")
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--rtmp-port", type=int, help="RTMP port (default 1935)")
    p.add_argument("--rtsp-port", type=int, help="RTSP port (default 8554)")
    p.add_argument("--http-port", type=int, help="HTTP port: pages, LL-HLS, API (default 8888)")
    p.add_argument("--ws-port", type=int, help="WebSocket port (default 8889)")
    p.add_argument("--log-level", help="debug, info, warning, error")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {k: getattr(args, k) for k in ("host", "rtmp_port", "rtsp_port", "http_port",
                                                "ws_port", "log_level")}
    try:
        cfg = config_mod.load(args.config, overrides=overrides)
    except ConfigError as e:
        print(f"rtmpgop: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rtmpgop.app import run

    return run(cfg)


if __name__ == "__main__":
    raise SystemExit(main())
