"""rtmpgop: a live-video ingest and relay server (RTMP/RTSP in; RTMP, RTSP, LL-HLS, WebP out)."""

__version__ = "0.1.0"
