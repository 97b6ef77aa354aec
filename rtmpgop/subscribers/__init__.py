"""Subscribers: read a channel Subscription and produce an output (RTMP play, RTSP play, WebP, LL-HLS)."""
