#!/bin/sh
# Installs what rtmpgop needs on a Debian machine, into ./.venv.
#   sh scripts/setup.sh          server: Python deps, ffmpeg, hls.js for the player page
#   sh scripts/setup.sh --test   also the test peers: chromium, nginx-rtmp, GStreamer RTSP server
# Runs apt-get as root (or through sudo when not root). Idempotent.
set -eu
cd "$(dirname "$0")/.."
TEST=0
[ "${1:-}" = "--test" ] && TEST=1

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

PKGS="python3-venv python3-dev gcc ffmpeg"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
if [ "$TEST" = 1 ]; then
  # chromium: browser tests; nginx + rtmp module: the benchmark peer; GStreamer: a real
  # third-party RTSP server playing the IP camera in the source tests.
  PKGS="$PKGS chromium nginx libnginx-mod-rtmp python3-gi gir1.2-gst-rtsp-server-1.0 \
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
fi
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# The Debian nginx package starts a service on port 80 that we do not want.
[ "$TEST" = 1 ] && { $SUDO systemctl disable --now nginx >/dev/null 2>&1 || $SUDO pkill -x nginx || true; }

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ "$TEST" = 1 ]; then
  .venv/bin/pip install -q -e '.[test]'
else
  .venv/bin/pip install -q -e .
fi

# hls.js for the LL-HLS player page, from the npm registry (not committed).
VENDOR=rtmpgop/web/vendor
if [ ! -f "$VENDOR/hls.min.js" ]; then
  mkdir -p "$VENDOR"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent hls.js@1 >/dev/null && tar xzf hls.js-*.tgz)
  cp "$tmp/package/dist/hls.min.js" "$VENDOR/hls.min.js"
  rm -rf "$tmp"
fi
